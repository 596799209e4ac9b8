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

	names    nameCache  // service/operation names already written recently
	maxValue int        // largest value the store accepts; 0 = badger's own limits
	recMu    sync.Mutex // serialises WriteRecords (exact duplicate counts)

	stats struct {
		spansWritten, spanBatches        atomic.Uint64
		spansSkipped                     atomic.Uint64
		recordsWritten, recordDuplicates atomic.Uint64
		gcRuns, gcRewrites, gcErrors     atomic.Uint64
		lastGC                           atomic.Int64
		candidates, indexEntries         atomic.Uint64
		derivedCut                       atomic.Uint64
		reclaimRuns, reclaimErrors       atomic.Uint64
		lastReclaim                      atomic.Int64
		searchWaits                      atomic.Uint64
		pageOuts, pageOutErrors          atomic.Uint64
	}

	// lastWrite is when the last span or record write started (Unix ns);
	// Open counts as one, since data written before it may still expire.
	lastWrite atomic.Int64
	searches  chan struct{} // a slot per running search (max_concurrent_searches)
	writeMu   sync.RWMutex  // read-held by writes; Reclaim's flush takes it
	writers   atomic.Int32  // writes in progress

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
	cfg = cfg.Effective()
	opts := badger.DefaultOptions(cfg.Dir).
		WithInMemory(cfg.InMemory).
		WithSyncWrites(cfg.SyncWrites).
		WithLogger(badgerLogger{logger.With("component", "badger")}).
		WithBlockCacheSize(int64(cfg.BlockCacheMB) << 20).
		WithIndexCacheSize(int64(cfg.IndexCacheMB) << 20).
		WithMemTableSize(int64(cfg.MemTableMB) << 20).
		WithNumMemtables(cfg.NumMemtables).
		// Table builders (memtable flushes, compactions) hold a whole table
		// in memory until it is written, so these size that memory.
		WithBaseTableSize(int64(cfg.BaseTableMB) << 20).
		WithNumCompactors(cfg.NumCompactors).
		WithNumLevelZeroTables(cfg.NumLevelZeroTables).
		WithNumLevelZeroTablesStall(cfg.NumLevelZeroTablesStall).
		WithValueThreshold(int64(cfg.ValueThresholdKB) << 10).
		// Larger blocks compress span chunks (which repeat resource and
		// attribute keys) much better; GetTrace reads one block per chunk.
		WithBlockSize(cfg.BlockSizeKB << 10).
		WithMetricsEnabled(false).
		// Writers never read-modify-write the same key concurrently
		// (chunk keys are unique per call), so conflict detection is waste.
		WithDetectConflicts(false)
	maxValue := 0
	if cfg.InMemory {
		// In memory every value stays in the LSM tree, and badger refuses
		// values above the value threshold there (64 KiB by default, a
		// 500-span chunk of one trace): raise it to what badger allows and
		// have WriteSpans split chunks to fit.
		maxValue = InMemoryMaxValue(cfg.MemTableMB)
		opts = opts.WithDir("").WithValueDir("").WithValueThreshold(int64(maxValue))
	}
	switch cfg.Compression {
	case "zstd":
		opts = opts.WithCompression(options.ZSTD).WithZSTDCompressionLevel(cfg.ZSTDLevel)
	case "snappy":
		opts = opts.WithCompression(options.Snappy)
	case "none":
		opts = opts.WithCompression(options.None)
	}
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open badger at %q: %w", cfg.Dir, err)
	}
	s := &Store{cfg: cfg, logger: logger, db: db, done: make(chan struct{}), maxValue: maxValue,
		searches: make(chan struct{}, cfg.MaxConcurrentSearches)}
	s.lastWrite.Store(time.Now().UnixNano())
	s.names.init()
	return s, nil
}

// InMemoryMaxValue is the largest value, in bytes, an in-memory store with
// memtables of memtableMB keeps: badger's bound on a value kept in its LSM
// tree, the smaller of 1 MiB and 15 % of a memtable. WriteSpans splits a
// trace's chunk until it fits; a single span above it is refused with
// ErrValueTooLarge.
func InMemoryMaxValue(memtableMB int) int {
	return min(1<<20, memtableMB<<20*15/100)
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
		if s.cfg.InMemory {
			return
		}
		if s.cfg.GCInterval > 0 {
			s.wg.Go(s.gcLoop)
		}
		if s.cfg.ReclaimInterval > 0 {
			s.wg.Go(s.reclaimLoop)
		}
		if s.cfg.TablePagesMB > 0 {
			s.wg.Go(s.pageOutLoop)
		}
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
	s.runGC()
}

func (s *Store) runGC() {
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

// pageOutInterval is how often the resident file pages are checked
// against table_pages_mb.
const pageOutInterval = 10 * time.Second

func (s *Store) pageOutLoop() {
	t := time.NewTicker(pageOutInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			if fileRSS() > int64(s.cfg.TablePagesMB)<<20 {
				s.PageOutTables()
			}
		}
	}
}

// PageOutTables has the kernel reclaim the process's resident pages of the
// store's tables and value log (see table_pages_mb); reads fault them back
// in from the page cache or disk. What the background loop calls when the
// resident file pages exceed table_pages_mb; exported for tests and admin.
func (s *Store) PageOutTables() {
	if s.cfg.InMemory || !s.enter() {
		return
	}
	defer s.exit()
	s.stats.pageOuts.Add(1)
	if _, err := pageOutTables(s.cfg.Dir); err != nil {
		s.stats.pageOutErrors.Add(1)
		s.logger.Warn("page out tables failed", "err", err)
	}
}

// reclaimLoop runs Reclaim when the store has been idle (no write) for a
// whole ReclaimInterval and data written before may have expired since the
// last Reclaim: it keeps doing so, once per interval, until every write is
// older than the longest TTL at the previous Reclaim. Expired data so
// leaves the disk at most two intervals after it expired, however long the
// store stays idle; while writes arrive, badger's compactions reclaim it.
func (s *Store) reclaimLoop() {
	iv := s.cfg.ReclaimInterval
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			if s.reclaimDue(now) {
				_ = s.Reclaim() // counted and logged there
			}
		}
	}
}

// reclaimDue reports whether an idle Reclaim at now can drop something.
func (s *Store) reclaimDue(now time.Time) bool {
	last := time.Unix(0, s.lastWrite.Load())
	if s.writers.Load() > 0 || now.Sub(last) < s.cfg.ReclaimInterval {
		return false // writes arrive: compactions do the work
	}
	// Data written at last expires at last+TTL; a Reclaim after that has
	// dropped everything that can expire.
	done := time.Unix(0, s.stats.lastReclaim.Load())
	return !done.After(last.Add(max(s.cfg.SpanTTL, s.cfg.RecordTTL)))
}

// reclaimMarkers are two tiny keys at both ends of the key space, outside
// every prefix the store reads (keys.go): rewritten by each Reclaim, they
// make the level-0 table its flush creates overlap every table below, so
// the compaction that follows rewrites all of them. reclaimDrop is the
// prefix DropPrefix is asked to drop, which makes badger flush its
// memtables and compact level 0 (its only public way to do both).
var (
	reclaimMarkers = [][]byte{{0x00, 'r'}, {0xff, 'r'}}
	reclaimDrop    = []byte{0xfe, 'r'}
)

// Reclaim rewrites the LSM tree so that expired entries leave the disk even
// when no write triggers a compaction: it flushes the memtables (whose
// write-ahead files hold expired entries too), compacts every level into the
// last one (DB.Flatten, which drops expired entries there) and runs a
// value-log GC pass. It costs a rewrite of the whole LSM tree (about the
// write cost of the data stored, docs/benchmarks.md); writes arriving
// meanwhile wait for the flush, then go to memtables while compactions are
// paused. Used by the idle loop (reclaim_interval); exported for tests and
// admin.
func (s *Store) Reclaim() error {
	if s.cfg.InMemory || !s.enter() {
		return nil
	}
	defer s.exit()
	err := s.reclaim()
	s.stats.reclaimRuns.Add(1)
	s.stats.lastReclaim.Store(time.Now().UnixNano())
	if err != nil {
		s.stats.reclaimErrors.Add(1)
		s.logger.Warn("reclaim failed", "err", err)
		return fmt.Errorf("reclaim: %w", err)
	}
	s.runGC()
	return nil
}

func (s *Store) reclaim() error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range reclaimMarkers {
		if err := wb.Set(k, nil); err != nil {
			return err
		}
	}
	if err := wb.Set(reclaimDrop, nil); err != nil {
		return err
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	s.writeMu.Lock()
	err := s.db.DropPrefix(reclaimDrop)
	s.writeMu.Unlock()
	if err != nil {
		return err
	}
	return s.db.Flatten(1)
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
		ReclaimRuns:         s.stats.reclaimRuns.Load(),
		ReclaimErrors:       s.stats.reclaimErrors.Load(),
		SearchWaits:         s.stats.searchWaits.Load(),
		PageOuts:            s.stats.pageOuts.Load(),
		PageOutErrors:       s.stats.pageOutErrors.Load(),
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

// MemoryStats is what badger's caches hold now, in bytes, next to their
// configured capacity (after memory_limit_mib).
type MemoryStats struct {
	BlockCacheBytes, BlockCacheCapacity int64
	IndexCacheBytes, IndexCacheCapacity int64
	// MemTables is the configured memtable memory (num_memtables x
	// memtable_mb), an upper bound: badger does not report what is used.
	MemTables int64
}

// MemoryStats reads the cache sizes (ristretto's own counters: no global
// expvar needed) and the effective configuration.
func (s *Store) MemoryStats() MemoryStats {
	ms := MemoryStats{
		BlockCacheCapacity: int64(s.cfg.BlockCacheMB) << 20,
		IndexCacheCapacity: int64(s.cfg.IndexCacheMB) << 20,
		MemTables:          int64(s.cfg.NumMemtables*s.cfg.MemTableMB) << 20,
	}
	if !s.enter() {
		return ms
	}
	defer s.exit()
	if m := s.db.BlockCacheMetrics(); m != nil {
		ms.BlockCacheBytes = int64(m.CostAdded()) - int64(m.CostEvicted())
	}
	if m := s.db.IndexCacheMetrics(); m != nil {
		ms.IndexCacheBytes = int64(m.CostAdded()) - int64(m.CostEvicted())
	}
	return ms
}

// Config returns the effective configuration (sizes after memory_limit_mib).
func (s *Store) Config() Config { return s.cfg }

// acquireSearch takes a max_concurrent_searches slot, waiting for one (or
// for ctx or Close). Pair with releaseSearch.
func (s *Store) acquireSearch(ctx context.Context) error {
	select {
	case s.searches <- struct{}{}:
		return nil
	default:
	}
	s.stats.searchWaits.Add(1)
	select {
	case s.searches <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return ErrClosed
	}
}

func (s *Store) releaseSearch() { <-s.searches }

// writing admits a write and notes it for the idle reclaim; call the
// returned func when the write is done. Reclaim's memtable flush refuses
// writes (badger's DropPrefix blocks them), so it waits for the writes in
// progress and holds new ones until the flush is over.
func (s *Store) writing() func() {
	s.writeMu.RLock()
	s.writers.Add(1)
	s.lastWrite.Store(time.Now().UnixNano())
	return func() {
		s.lastWrite.Store(time.Now().UnixNano())
		s.writers.Add(-1)
		s.writeMu.RUnlock()
	}
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
