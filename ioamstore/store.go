package ioamstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Store is the badger-backed span and IOAM record store. All methods are safe
// for concurrent use.
type Store struct {
	cfg    Config
	logger *slog.Logger
	db     *badger.DB

	names nameCache  // service/operation names already written recently
	recMu sync.Mutex // serialises WriteRecords (exact duplicate counts)

	stats struct {
		spansWritten, spanBatches        atomic.Uint64
		spansSkipped                     atomic.Uint64
		recordsWritten, recordDuplicates atomic.Uint64
		gcRuns, gcRewrites, gcErrors     atomic.Uint64
		lastGC                           atomic.Int64
		candidates, indexEntries         atomic.Uint64
		derivedCut                       atomic.Uint64
	}

	startOnce sync.Once
	closeOnce sync.Once
	closeErr  error
	closed    atomic.Bool
	inflight  sync.RWMutex // read-held by every call using db; Close takes it
	done      chan struct{}
	wg        sync.WaitGroup
}

// Open validates cfg and opens (or creates) the store. logger may be nil.
func Open(cfg Config, logger *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ioamstore config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := badger.DefaultOptions(cfg.Dir).
		WithInMemory(cfg.InMemory).
		WithSyncWrites(cfg.SyncWrites).
		WithLogger(badgerLogger{logger.With("component", "badger")}).
		WithBlockCacheSize(int64(cfg.BlockCacheMB) << 20).
		WithMemTableSize(int64(cfg.MemTableMB) << 20).
		WithValueThreshold(int64(cfg.ValueThresholdKB) << 10).
		// Larger blocks compress span chunks (which repeat resource and
		// attribute keys) much better; GetTrace reads one block per chunk.
		WithBlockSize(16 << 10).
		WithMetricsEnabled(false).
		// Writers never read-modify-write the same key concurrently
		// (chunk keys are unique per call), so conflict detection is waste.
		WithDetectConflicts(false)
	if cfg.InMemory {
		opts = opts.WithDir("").WithValueDir("")
	}
	switch cfg.Compression {
	case "zstd":
		opts = opts.WithCompression(options.ZSTD).WithZSTDCompressionLevel(1)
	case "snappy":
		opts = opts.WithCompression(options.Snappy)
	case "none":
		opts = opts.WithCompression(options.None)
	}
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open badger at %q: %w", cfg.Dir, err)
	}
	s := &Store{cfg: cfg, logger: logger, db: db, done: make(chan struct{})}
	s.names.init()
	return s, nil
}

// Start launches the background maintenance (value-log GC every GCInterval).
// Calling it more than once is harmless. Like every other component, the
// maintenance is owned by the store, not by ctx: it runs until Close, so a
// caller whose start-up context ends (a request, a timeout) does not stop GC
// behind the store's back. ctx only bounds Start itself.
func (s *Store) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !s.enter() {
		return ErrClosed
	}
	defer s.exit()
	s.startOnce.Do(func() {
		if s.cfg.GCInterval <= 0 || s.cfg.InMemory {
			return
		}
		s.wg.Go(s.gcLoop)
	})
	return nil
}

func (s *Store) gcLoop() {
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.RunGC()
		}
	}
}

// RunGC runs one value-log GC pass: RunValueLogGC repeatedly until it has
// nothing to rewrite (bounded to 16 rewrites per pass so Close never waits
// long). It is what the background loop calls; exported for tests and admin.
func (s *Store) RunGC() {
	if s.cfg.InMemory || !s.enter() {
		return
	}
	defer s.exit()
	s.stats.gcRuns.Add(1)
	s.stats.lastGC.Store(time.Now().UnixNano())
	for range 16 {
		select {
		case <-s.done:
			return
		default:
		}
		err := s.db.RunValueLogGC(s.cfg.GCDiscardRatio)
		if err == nil {
			s.stats.gcRewrites.Add(1)
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			s.stats.gcErrors.Add(1)
			s.logger.Warn("value log gc failed", "err", err)
		}
		return
	}
}

// Close stops the background goroutines, flushes and closes badger. It is
// idempotent and safe without Start.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.done)
		s.wg.Wait()
		s.inflight.Lock() // wait for calls in progress; new ones see closed
		defer s.inflight.Unlock()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Purge deletes everything (used by the conformance suite between tests).
func (s *Store) Purge(ctx context.Context) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.exit()
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	s.names.reset()
	return nil
}

// DiskUsage returns the bytes of the LSM tree (.sst files) and of the value
// log (.vlog files) allocated on disk, read from the directory at each call
// (badger's own DB.Size needs its global expvar metrics, which the store
// leaves off). An in-memory store reports zero.
func (s *Store) DiskUsage() (lsm, vlog int64) {
	if s.cfg.InMemory || s.cfg.Dir == "" {
		return 0, 0
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if ext != ".sst" && ext != ".vlog" {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed by a compaction meanwhile
		}
		if ext == ".sst" {
			lsm += allocatedBytes(fi)
		} else {
			vlog += allocatedBytes(fi)
		}
	}
	return lsm, vlog
}

// Stats returns the cumulative counters.
func (s *Store) Stats() Stats {
	st := Stats{
		SpansWritten:        s.stats.spansWritten.Load(),
		SpanBatches:         s.stats.spanBatches.Load(),
		SpansSkipped:        s.stats.spansSkipped.Load(),
		RecordsWritten:      s.stats.recordsWritten.Load(),
		RecordDuplicates:    s.stats.recordDuplicates.Load(),
		GCRuns:              s.stats.gcRuns.Load(),
		GCRewrites:          s.stats.gcRewrites.Load(),
		GCErrors:            s.stats.gcErrors.Load(),
		QueriesCandidates:   s.stats.candidates.Load(),
		QueriesDerivedCut:   s.stats.derivedCut.Load(),
		QueriesIndexEntries: s.stats.indexEntries.Load(),
	}
	if ns := s.stats.lastGC.Load(); ns != 0 {
		st.LastGC = time.Unix(0, ns)
	}
	return st
}

// badgerLogger routes badger's logger into slog. Badger logs every compaction
// at INFO, so INFO becomes slog Debug; warnings and errors keep their level.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(trimNL(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(trimNL(fmt.Sprintf(f, a...))) }
func (b badgerLogger) Infof(f string, a ...any)    { b.log(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.log(slog.LevelDebug-4, f, a) }

func (b badgerLogger) log(level slog.Level, f string, a []any) {
	if !b.l.Enabled(context.Background(), level) {
		return // skip Sprintf: badger's debug output is heavy
	}
	b.l.Log(context.Background(), level, trimNL(fmt.Sprintf(f, a...)))
}

func trimNL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// enter admits a call that uses db; false after Close. Pair with exit.
func (s *Store) enter() bool {
	s.inflight.RLock()
	if s.closed.Load() {
		s.inflight.RUnlock()
		return false
	}
	return true
}

func (s *Store) exit() { s.inflight.RUnlock() }
