package ioamstore

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config configures the store. YAML keys are snake_case; every zero value that
// makes no sense is rejected by Validate rather than silently defaulted.
type Config struct {
	// Dir is the persistent directory holding badger's LSM tree and value log.
	// Ignored when InMemory is true.
	Dir string `yaml:"dir"`
	// InMemory keeps everything in RAM (tests); nothing survives Close.
	InMemory bool `yaml:"in_memory"`
	// SpanTTL is how long spans, their indexes and service/operation names are
	// kept. Expired data is dropped by compaction and value-log GC.
	SpanTTL time.Duration `yaml:"span_ttl"`
	// RecordTTL is how long IOAM records and their index are kept.
	RecordTTL time.Duration `yaml:"record_ttl"`
	// SyncWrites fsyncs every write before it is acknowledged. Off, a crash can
	// lose the last writes acknowledged to the exporter (but never corrupts the
	// store); see BenchmarkWriteSpans for the cost.
	SyncWrites bool `yaml:"sync_writes"`
	// GCInterval is how often value-log garbage collection runs (0 disables it).
	GCInterval time.Duration `yaml:"gc_interval"`
	// GCDiscardRatio is the fraction of a value-log file that must be garbage
	// before GC rewrites it, in (0, 1).
	GCDiscardRatio float64 `yaml:"gc_discard_ratio"`
	// Compression of LSM blocks: "zstd" (default, smallest), "snappy" or "none".
	Compression string `yaml:"compression"`
	// ZSTDLevel is the zstd level of "zstd" compression, 1 to 22; badger's
	// encoder (klauspost/compress) has four speeds: 1-2 fastest, 3-5
	// default, 6-9 better, 10-22 best.
	ZSTDLevel int `yaml:"zstd_level"`
	// BlockSizeKB is the size of badger's LSM blocks, the unit of
	// compression and of the block cache, in KiB. Span chunks repeat their
	// resource and attribute keys, so larger blocks compress them better;
	// a read decompresses a whole block.
	BlockSizeKB int `yaml:"block_size_kb"`
	// MemoryLimitMiB, when > 0, is the memory budget of the whole clt-storage
	// process (default 512): it caps each size below at its share of the
	// budget (see [Config.Effective]; a smaller explicit value is kept; the
	// defaults are within the shares of 512) and clt-storage sets it as the
	// Go runtime's soft memory limit. 0 uses the sizes as given and leaves
	// the Go heap to GOGC.
	MemoryLimitMiB int `yaml:"memory_limit_mib"`
	// BlockCacheMB is badger's cache of decompressed blocks, in MiB (0 =
	// none, only with compression "none": badger decompresses into it).
	// Queries on recent data are served from it.
	BlockCacheMB int `yaml:"block_cache_mb"`
	// IndexCacheMB is badger's cache of table indexes and Bloom filters, in
	// MiB. 0 keeps every table's index in memory, which grows with the data
	// (about 2 % of the LSM size); > 0 bounds it and reads the others on demand.
	IndexCacheMB int `yaml:"index_cache_mb"`
	// MemTableMB is the size of one memtable in MiB. Each memtable flush also
	// builds its table in memory (up to about 2 x MemTableMB while it runs).
	MemTableMB int `yaml:"memtable_mb"`
	// NumMemtables is how many memtables (the one written and those waiting
	// for their flush) badger keeps before writes wait.
	NumMemtables int `yaml:"num_memtables"`
	// BaseTableMB is the size of the tables compactions write at the base
	// level (deeper levels: x2 per level). Each running compaction holds the
	// tables it is building in memory, so this sizes compaction memory.
	BaseTableMB int `yaml:"base_table_mb"`
	// NumCompactors is how many compactions run concurrently (0 or >= 2; 0
	// disables compaction, for tests only).
	NumCompactors int `yaml:"num_compactors"`
	// NumLevelZeroTables is how many flushed tables wait in level 0 before they
	// are compacted; NumLevelZeroTablesStall (larger) is where writes stall.
	NumLevelZeroTables      int `yaml:"num_level_zero_tables"`
	NumLevelZeroTablesStall int `yaml:"num_level_zero_tables_stall"`
	// ValueThresholdKB: values larger than this go to the value log instead of
	// the LSM tree. Span chunks are small and compress well inline. At most
	// 15 % of memtable_mb (badger's batch limit).
	ValueThresholdKB int `yaml:"value_threshold_kb"`
	// TablePagesMB bounds the process's resident file pages (RssFile: the
	// mapped tables and value log, memtable files, the binary), in MiB:
	// checked every 10 s, above it the store asks the kernel to reclaim its
	// table and value-log pages (badger writes and keeps every table mapped,
	// so otherwise RSS grows with the data stored). 0 never does, unless
	// memory_limit_mib is set: then its share applies ([Config.Effective]).
	TablePagesMB int `yaml:"table_pages_mb"`
	// MaxConcurrentSearches bounds the FindTraces / FindTraceIDs /
	// GetDependencies calls running at once (each holds its candidates and a
	// read snapshot); further calls wait for a slot or their context.
	MaxConcurrentSearches int `yaml:"max_concurrent_searches"`
	// ReclaimInterval is how often an idle store (no write for a whole
	// interval) rewrites its LSM tree to drop expired data from disk, as
	// long as data written before may have expired since the last rewrite
	// (0 disables it). Under writes badger's compactions do that work.
	ReclaimInterval time.Duration `yaml:"reclaim_interval"`
	// DependencyMaxTraces bounds how many traces GetDependencies loads (the
	// cost per trace is in docs/benchmarks.md), shared equally between
	// services; beyond it the counts
	// cover only each service's newest traces.
	DependencyMaxTraces int `yaml:"dependency_max_traces"`
	// MaxRecordsPerSpan bounds the records of one span that reads decode
	// and return (GetRecords, FindTraces, GetDependencies, node searches);
	// the rest are only counted (Record.Excess). 0 = no limit. Not a store
	// key: clt-storage sets it from storage.max_records_per_span.
	MaxRecordsPerSpan int `yaml:"-"`
}

// DefaultMaxRecordsPerSpan is MaxRecordsPerSpan's default: a span crosses a
// handful of paths, one record per path and reporter; thousands are a flood.
const DefaultMaxRecordsPerSpan = 1000

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Dir:                     "./data/clt-storage",
		SpanTTL:                 72 * time.Hour,
		RecordTTL:               72 * time.Hour,
		GCInterval:              5 * time.Minute,
		GCDiscardRatio:          0.5,
		Compression:             "zstd",
		ZSTDLevel:               1,
		BlockSizeKB:             64,
		MemoryLimitMiB:          512,
		BlockCacheMB:            64,
		IndexCacheMB:            32,
		MemTableMB:              16,
		NumMemtables:            3,
		BaseTableMB:             2,
		NumCompactors:           2,
		NumLevelZeroTables:      4,
		NumLevelZeroTablesStall: 12,
		ValueThresholdKB:        64,
		TablePagesMB:            128,
		MaxConcurrentSearches:   8,
		ReclaimInterval:         time.Hour,
		DependencyMaxTraces:     10000,
		MaxRecordsPerSpan:       DefaultMaxRecordsPerSpan,
	}
}

// minMemoryLimitMiB is the smallest memory_limit_mib accepted: below it the
// fixed costs (Go runtime, gRPC servers, one memtable flush) do not fit.
const minMemoryLimitMiB = 128

// Effective returns c with the sizes capped by MemoryLimitMiB (unchanged
// when it is 0). With M = memory_limit_mib, each size is the smaller of its
// configured value and its share of M:
//
//	block_cache_mb          M x 15 %
//	index_cache_mb          M x 10 %  (0, "all in memory", becomes the cap)
//	memtable_mb             M / 32, at least 4
//	num_memtables           3
//	base_table_mb           M / 256, at least 1
//	num_compactors          2
//	max_concurrent_searches M / 64, at least 2
//	table_pages_mb          M / 4  (0, "never", becomes the cap)
//
// That puts badger's own memory (caches, memtables, one flush building its
// table, two compactions building theirs; [Config.EstimatedMemoryMiB]) at
// two thirds of M at 128 MiB and about half from 256 MiB, and leaves the
// rest to the Go garbage collector's headroom and the servers' requests.
func (c Config) Effective() Config {
	m := c.MemoryLimitMiB
	if m <= 0 {
		return c
	}
	capTo := func(v *int, share int) {
		if *v > share {
			*v = share
		}
	}
	capTo(&c.BlockCacheMB, m*15/100)
	if share := m * 10 / 100; c.IndexCacheMB == 0 || c.IndexCacheMB > share {
		c.IndexCacheMB = share
	}
	capTo(&c.MemTableMB, max(4, m/32))
	capTo(&c.NumMemtables, 3)
	capTo(&c.BaseTableMB, max(1, m/256))
	if c.NumCompactors > 2 {
		c.NumCompactors = 2
	}
	capTo(&c.MaxConcurrentSearches, max(2, m/64))
	if share := m / 4; c.TablePagesMB == 0 || c.TablePagesMB > share {
		c.TablePagesMB = share
	}
	// Keep the batch limit badger derives from the memtable valid.
	capTo(&c.ValueThresholdKB, c.MemTableMB*1024*15/100)
	return c
}

// EstimatedMemoryMiB is the memory the store's sizes account for, in MiB
// (the formula of docs/storage.md §8): the block and index caches, the
// memtables, one memtable flush (2 x memtable_mb) and, per compactor, the
// tables a compaction builds at once (about 16 x base_table_mb). It is what
// the budget of [Config.Effective] keeps at half to two thirds of
// memory_limit_mib (Validate rejects more than three quarters).
func (c Config) EstimatedMemoryMiB() int {
	return c.BlockCacheMB + c.IndexCacheMB + (c.NumMemtables+2)*c.MemTableMB +
		c.NumCompactors*16*c.BaseTableMB
}

// Validate reports every problem at once, naming the YAML key.
func (c Config) Validate() error {
	var errs []error
	if !c.InMemory && strings.TrimSpace(c.Dir) == "" {
		errs = append(errs, errors.New("dir: must be set unless in_memory is true"))
	}
	if c.SpanTTL <= 0 {
		errs = append(errs, fmt.Errorf("span_ttl: must be > 0, got %s", c.SpanTTL))
	}
	if c.RecordTTL <= 0 {
		errs = append(errs, fmt.Errorf("record_ttl: must be > 0, got %s", c.RecordTTL))
	}
	if c.GCInterval < 0 {
		errs = append(errs, fmt.Errorf("gc_interval: must be >= 0, got %s", c.GCInterval))
	}
	if !(c.GCDiscardRatio > 0 && c.GCDiscardRatio < 1) {
		errs = append(errs, fmt.Errorf("gc_discard_ratio: must be in (0, 1), got %g", c.GCDiscardRatio))
	}
	switch c.Compression {
	case "zstd", "snappy", "none":
	default:
		errs = append(errs, fmt.Errorf("compression: must be zstd, snappy or none, got %q", c.Compression))
	}
	if c.Compression == "zstd" && (c.ZSTDLevel < 1 || c.ZSTDLevel > 22) {
		errs = append(errs, fmt.Errorf("zstd_level: must be in [1, 22], got %d", c.ZSTDLevel))
	}
	if c.BlockSizeKB < 1 || c.BlockSizeKB > 1024 {
		errs = append(errs, fmt.Errorf("block_size_kb: must be in [1, 1024], got %d", c.BlockSizeKB))
	}
	if c.BlockCacheMB < 0 {
		errs = append(errs, fmt.Errorf("block_cache_mb: must be >= 0, got %d", c.BlockCacheMB))
	}
	if c.BlockCacheMB == 0 && c.Compression != "none" && !c.InMemory {
		// badger panics at open: it decompresses blocks into the cache
		errs = append(errs, fmt.Errorf("block_cache_mb: must be > 0 with compression %q", c.Compression))
	}
	if c.MemTableMB < 1 || c.MemTableMB > 1024 {
		errs = append(errs, fmt.Errorf("memtable_mb: must be in [1, 1024], got %d", c.MemTableMB))
	}
	if c.ValueThresholdKB < 1 || c.ValueThresholdKB > 1024 {
		errs = append(errs, fmt.Errorf("value_threshold_kb: must be in [1, 1024], got %d", c.ValueThresholdKB))
	}
	if c.MemoryLimitMiB != 0 && c.MemoryLimitMiB < minMemoryLimitMiB {
		errs = append(errs, fmt.Errorf("memory_limit_mib: must be 0 (no limit) or >= %d, got %d", minMemoryLimitMiB, c.MemoryLimitMiB))
	}
	if c.IndexCacheMB < 0 {
		errs = append(errs, fmt.Errorf("index_cache_mb: must be >= 0, got %d", c.IndexCacheMB))
	}
	if c.NumMemtables < 1 || c.NumMemtables > 16 {
		errs = append(errs, fmt.Errorf("num_memtables: must be in [1, 16], got %d", c.NumMemtables))
	}
	if c.BaseTableMB < 1 || c.BaseTableMB > 256 {
		errs = append(errs, fmt.Errorf("base_table_mb: must be in [1, 256], got %d", c.BaseTableMB))
	}
	if c.NumCompactors < 0 || c.NumCompactors == 1 || c.NumCompactors > 16 {
		errs = append(errs, fmt.Errorf("num_compactors: must be 0 or in [2, 16] (badger needs two: one for level 0), got %d", c.NumCompactors))
	}
	if c.NumLevelZeroTables < 1 {
		errs = append(errs, fmt.Errorf("num_level_zero_tables: must be >= 1, got %d", c.NumLevelZeroTables))
	}
	if c.NumLevelZeroTablesStall <= c.NumLevelZeroTables {
		errs = append(errs, fmt.Errorf("num_level_zero_tables_stall: must be > num_level_zero_tables (%d), got %d", c.NumLevelZeroTables, c.NumLevelZeroTablesStall))
	}
	if c.MemTableMB >= 1 && c.ValueThresholdKB >= 1 && c.ValueThresholdKB*100 > c.MemTableMB*1024*15 {
		errs = append(errs, fmt.Errorf("value_threshold_kb: must be at most 15 %% of memtable_mb (%d KiB), got %d", c.MemTableMB*1024*15/100, c.ValueThresholdKB))
	}
	if c.TablePagesMB < 0 {
		errs = append(errs, fmt.Errorf("table_pages_mb: must be >= 0, got %d", c.TablePagesMB))
	}
	if c.MaxConcurrentSearches < 1 {
		errs = append(errs, fmt.Errorf("max_concurrent_searches: must be >= 1, got %d", c.MaxConcurrentSearches))
	}
	if c.ReclaimInterval < 0 {
		errs = append(errs, fmt.Errorf("reclaim_interval: must be >= 0, got %s", c.ReclaimInterval))
	}
	if c.MemoryLimitMiB >= minMemoryLimitMiB {
		if e := c.Effective(); e.EstimatedMemoryMiB() > c.MemoryLimitMiB*3/4 {
			errs = append(errs, fmt.Errorf("memory_limit_mib: %d MiB leaves too little beside the store's sizes (%d MiB estimated)", c.MemoryLimitMiB, e.EstimatedMemoryMiB()))
		}
	}
	if c.MaxRecordsPerSpan < 0 {
		errs = append(errs, fmt.Errorf("max_records_per_span: must be >= 0, got %d", c.MaxRecordsPerSpan))
	}
	if c.DependencyMaxTraces < 1 {
		errs = append(errs, fmt.Errorf("dependency_max_traces: must be >= 1, got %d", c.DependencyMaxTraces))
	}
	return errors.Join(errs...)
}
