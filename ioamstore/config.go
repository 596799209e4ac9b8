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
	// BlockCacheMB is badger's cache of decompressed blocks, in MiB. Queries on
	// recent data are served from it.
	BlockCacheMB int `yaml:"block_cache_mb"`
	// MemTableMB is the size of one memtable in MiB (badger keeps up to 5).
	MemTableMB int `yaml:"memtable_mb"`
	// ValueThresholdKB: values larger than this go to the value log instead of
	// the LSM tree. Span chunks are small and compress well inline.
	ValueThresholdKB int `yaml:"value_threshold_kb"`
	// DependencyMaxTraces bounds how many traces GetDependencies loads (the
	// cost per trace is in docs/benchmarks.md), shared equally between
	// services; beyond it the counts
	// cover only each service's newest traces.
	DependencyMaxTraces int `yaml:"dependency_max_traces"`
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Dir:                 "./data/clt-storage",
		SpanTTL:             72 * time.Hour,
		RecordTTL:           72 * time.Hour,
		GCInterval:          5 * time.Minute,
		GCDiscardRatio:      0.5,
		Compression:         "zstd",
		BlockCacheMB:        256,
		MemTableMB:          64,
		ValueThresholdKB:    64,
		DependencyMaxTraces: 10000,
	}
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
	if c.BlockCacheMB < 0 {
		errs = append(errs, fmt.Errorf("block_cache_mb: must be >= 0, got %d", c.BlockCacheMB))
	}
	if c.MemTableMB < 1 || c.MemTableMB > 1024 {
		errs = append(errs, fmt.Errorf("memtable_mb: must be in [1, 1024], got %d", c.MemTableMB))
	}
	if c.ValueThresholdKB < 1 || c.ValueThresholdKB > 1024 {
		errs = append(errs, fmt.Errorf("value_threshold_kb: must be in [1, 1024], got %d", c.ValueThresholdKB))
	}
	if c.DependencyMaxTraces < 1 {
		errs = append(errs, fmt.Errorf("dependency_max_traces: must be >= 1, got %d", c.DependencyMaxTraces))
	}
	return errors.Join(errs...)
}
