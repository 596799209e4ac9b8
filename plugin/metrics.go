package plugin

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cross-layer-telemetry/clt/ioamstore"
)

const metricsNamespace = "clt_storage"

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg *prometheus.Registry

	spansWritten     prometheus.Counter
	exportErrors     prometheus.Counter
	spansRejected    *prometheus.CounterVec
	recordsAccepted  prometheus.Counter
	recordsDuplicate prometheus.Counter
	recordsRejected  *prometheus.CounterVec
	queryLatency     *prometheus.HistogramVec
	queryErrors      *prometheus.CounterVec
	recordsCorrupt   prometheus.Counter
	readDuplicates   prometheus.Counter
	compatFlushes    *prometheus.CounterVec
	compatDropped    *prometheus.CounterVec
	nodesDropped     prometheus.Counter
	nodesErrors      prometheus.Counter
	requestsRefused  *prometheus.CounterVec
	recordsNotJoined prometheus.Counter
}

// statsSource is what the store exposes for the gauge functions.
type statsSource interface {
	DiskUsage() (lsm, vlog int64)
	Stats() ioamstore.Stats
}

func newMetrics(store statsSource) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		spansWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "spans_written_total",
			Help: "Spans stored from OTLP Export requests.",
		}),
		exportErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "export_errors_total",
			Help: "OTLP Export requests that failed (nothing of the request is assumed stored).",
		}),
		spansRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "spans_rejected_total",
			Help: "Spans refused by OTLP Export (reported in partial_success), by the invalid field.",
		}, []string{"reason"}),
		recordsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "records_accepted_total",
			Help: "IOAM records newly stored.",
		}),
		recordsDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "records_duplicate_total",
			Help: "IOAM records received again (retries); stored once.",
		}),
		recordsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "records_rejected_total",
			Help: "IOAM records not stored, by reason (the invalid field, 'batch' for valid records of an invalid batch, 'store' for storage errors).",
		}, []string{"reason"}),
		queryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "query_duration_seconds",
			Help:    "Latency of the Jaeger storage RPCs, including the IOAM join.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"rpc"}),
		queryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "query_errors_total",
			Help: "Jaeger storage RPCs that returned an error.",
		}, []string{"rpc"}),
		recordsCorrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "records_corrupt_total",
			Help: "Stored IOAM records that failed to decode at read time (skipped; the span is still served).",
		}),
		requestsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_refused_total",
			Help: "Requests refused before their work, by port and reason (unauthenticated, forbidden, budget: in-flight write budget spent, too_many_ids, undecodable: malformed protobuf or invalid UTF-8).",
		}, []string{"port", "reason"}),
	}
	m.readDuplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "read_duplicate_spans_total",
		Help: "Spans stored twice byte for byte (an Export retried in another batch shape) and sent once by a read.",
	})
	m.reg.MustRegister(m.readDuplicates)
	m.compatFlushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "compat_stream_flushes_total",
		Help: "Writes of traces received on ioam_api streams, by trigger (size: collector.compat_max_batch waiting; interval: collector.compat_flush_interval after the first; end: the stream ended).",
	}, []string{"trigger"})
	m.compatDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "compat_fields_dropped_total",
		Help: "Fields dropped from hops of compat reports that could not be read correctly (the rest of the report is kept), by API and field.",
	}, []string{"api", "field"})
	m.nodesDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "nodes_dropped_total",
		Help: "Nodes seen in records but not remembered (names, routers as services) because the node registry is full.",
	})
	m.nodesErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "nodes_write_errors_total",
		Help: "Failed writes of learned node names to the store (retried with the next record).",
	})
	m.recordsNotJoined = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "records_not_joined_total",
		Help: "IOAM records left out of reads beyond storage.max_records_per_span (counted per read; each such span carries a warning).",
	})
	m.reg.MustRegister(m.recordsNotJoined, m.requestsRefused, m.compatFlushes, m.compatDropped, m.nodesDropped, m.nodesErrors, m.recordsCorrupt, m.spansWritten, m.exportErrors, m.spansRejected, m.recordsAccepted, m.recordsDuplicate,
		m.recordsRejected, m.queryLatency, m.queryErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if store != nil {
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: metricsNamespace, Name: "badger_lsm_bytes",
				Help: "Bytes allocated on disk by badger's LSM tree (.sst files), read at scrape time.",
			}, func() float64 { lsm, _ := store.DiskUsage(); return float64(lsm) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: metricsNamespace, Name: "badger_vlog_bytes",
				Help: "Bytes allocated on disk by badger's value log (.vlog files), read at scrape time.",
			}, func() float64 { _, v := store.DiskUsage(); return float64(v) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "gc_runs_total",
				Help: "Value-log GC passes started.",
			}, func() float64 { return float64(store.Stats().GCRuns) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "gc_rewrites_total",
				Help: "Value-log files rewritten by GC.",
			}, func() float64 { return float64(store.Stats().GCRewrites) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "gc_errors_total",
				Help: "Value-log GC failures.",
			}, func() float64 { return float64(store.Stats().GCErrors) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "reclaim_runs_total",
				Help: "Idle rewrites of the LSM tree that drop expired data from disk (store.reclaim_interval).",
			}, func() float64 { return float64(store.Stats().ReclaimRuns) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "reclaim_errors_total",
				Help: "Idle LSM rewrites that failed.",
			}, func() float64 { return float64(store.Stats().ReclaimErrors) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "search_waits_total",
				Help: "Searches (FindTraces, FindTraceIDs, GetDependencies) that waited for one of store.max_concurrent_searches slots.",
			}, func() float64 { return float64(store.Stats().SearchWaits) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "table_pageouts_total",
				Help: "Times the store had the kernel reclaim its mapped table pages (resident file pages over store.table_pages_mb).",
			}, func() float64 { return float64(store.Stats().PageOuts) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "table_pageout_errors_total",
				Help: "Table page-outs that madvise refused.",
			}, func() float64 { return float64(store.Stats().PageOutErrors) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: metricsNamespace, Name: "query_derived_cut_total",
				Help: "Searches on read-time ioam.* tags stopped after enriching search_depth x 100 candidate traces.",
			}, func() float64 { return float64(store.Stats().QueriesDerivedCut) }),
		)
	}
	if ms, ok := store.(memorySource); ok {
		registerMemory(m.reg, ms)
	}
	if _, err := rssAnon(); err == nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "process_rss_anon_bytes",
			Help: "Anonymous resident memory of the process (RssAnon of /proc/self/status): the heap and stacks, without the mapped badger files the kernel can drop (process_resident_memory_bytes counts those too).",
		}, func() float64 { v, _ := rssAnon(); return float64(v) }))
	}
	return m
}

// memorySource is the store's memory figures (ioamstore.Store has them).
type memorySource interface {
	MemoryStats() ioamstore.MemoryStats
	Config() ioamstore.Config
}

func registerMemory(reg *prometheus.Registry, st memorySource) {
	cfg := st.Config()
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: name, Help: help}, f)
	}
	reg.MustRegister(
		gauge("memory_limit_bytes", "store.memory_limit_mib in bytes (0: no limit); also the Go runtime's soft memory limit.",
			func() float64 { return float64(int64(cfg.MemoryLimitMiB) << 20) }),
		gauge("badger_block_cache_bytes", "Bytes held by badger's block cache.",
			func() float64 { return float64(st.MemoryStats().BlockCacheBytes) }),
		gauge("badger_block_cache_capacity_bytes", "Capacity of badger's block cache (store.block_cache_mb after the memory limit).",
			func() float64 { return float64(st.MemoryStats().BlockCacheCapacity) }),
		gauge("badger_index_cache_bytes", "Bytes held by badger's index and Bloom filter cache.",
			func() float64 { return float64(st.MemoryStats().IndexCacheBytes) }),
		gauge("badger_index_cache_capacity_bytes", "Capacity of badger's index cache (store.index_cache_mb after the memory limit; 0: every index in memory).",
			func() float64 { return float64(st.MemoryStats().IndexCacheCapacity) }),
		gauge("badger_memtables_capacity_bytes", "Memory badger's memtables may take (num_memtables x memtable_mb after the memory limit).",
			func() float64 { return float64(st.MemoryStats().MemTables) }),
	)
}

// rssAnon reads RssAnon from /proc/self/status (Linux only).
func rssAnon() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss anon: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("rss anon: not in /proc/self/status")
}
