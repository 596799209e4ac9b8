package plugin

import (
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
	compatFlushes    *prometheus.CounterVec
	compatDropped    *prometheus.CounterVec
	nodesDropped     prometheus.Counter
	nodesErrors      prometheus.Counter
	requestsRefused  *prometheus.CounterVec
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
			Help: "Requests refused before their work, by port and reason (unauthenticated, forbidden, budget: in-flight write budget spent, too_many_ids).",
		}, []string{"port", "reason"}),
	}
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
	m.reg.MustRegister(m.requestsRefused, m.compatFlushes, m.compatDropped, m.nodesDropped, m.nodesErrors, m.recordsCorrupt, m.spansWritten, m.exportErrors, m.spansRejected, m.recordsAccepted, m.recordsDuplicate,
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
				Namespace: metricsNamespace, Name: "query_derived_cut_total",
				Help: "Searches on read-time ioam.* tags stopped after enriching search_depth x 100 candidate traces.",
			}, func() float64 { return float64(store.Stats().QueriesDerivedCut) }),
		)
	}
	return m
}
