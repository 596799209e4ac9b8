package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Malformed reasons (label reason of clt_agent_events_malformed_total).
const (
	ReasonUnconfiguredNamespace = "unconfigured_namespace"
	ReasonNodeLen               = "node_len"   // NodeLen contradicts the trace type
	ReasonTruncated             = "truncated"  // data shorter than the entries or carrier need
	ReasonCarrier               = "carrier"    // carrier ids missing, wrong schema or length
	ReasonTraceType             = "trace_type" // reserved or unsupported bits
	ReasonSnapshot              = "snapshot"   // bad opaque state snapshot
	ReasonPacket                = "packet"     // capture: not a parseable IPv6/HBH/IOAM packet
	ReasonOther                 = "other"
)

// Drop reasons (label reason of clt_agent_records_dropped_total).
const (
	DropQueueFull = "queue_full"
	DropRejected  = "rejected"  // refused by the collector, not retryable
	DropTooLarge  = "too_large" // one record larger than the collector accepts
	DropShutdown  = "shutdown"
)

// Metrics are the agent's counters, registered on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	EventsReceived   *prometheus.CounterVec // source
	EventsDecoded    prometheus.Counter
	EventsMalformed  *prometheus.CounterVec // reason
	EventsLost       *prometheus.CounterVec // source: kernel-side loss (netlink ENOBUFS, ring drops)
	AggregatesOpen   prometheus.Gauge
	AggregatesEvict  prometheus.Counter
	RecordsFlushed   prometheus.Counter
	RecordsExported  prometheus.Counter
	RecordsRetried   prometheus.Counter
	RecordsDropped   *prometheus.CounterVec // reason
	RecordsDuplicate prometheus.Counter
	BatchesSent      *prometheus.CounterVec // result: ok, error, split, rejected
	QueueBatches     prometheus.Gauge
	ExportLatency    prometheus.Histogram
}

// NewMetrics builds the metrics on a fresh private registry (with Go and process collectors).
func NewMetrics() *Metrics {
	const ns = "clt_agent"
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		EventsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_received_total",
			Help: "IOAM trace events read from the source."}, []string{"source"}),
		EventsDecoded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "events_decoded_total",
			Help: "Events decoded and aggregated."}),
		EventsMalformed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_malformed_total",
			Help: "Events dropped because they could not be decoded, by reason."}, []string{"reason"}),
		EventsLost: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "events_lost_total",
			Help: "Kernel-side losses: netlink ENOBUFS overruns (each loses one or more events) or capture ring drops (packets)."}, []string{"source"}),
		AggregatesOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "aggregates_open",
			Help: "Open (trace, span, path) aggregates."}),
		AggregatesEvict: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "aggregates_evicted_total",
			Help: "Aggregates flushed before their window ended because aggregation.max_open was reached."}),
		RecordsFlushed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_flushed_total",
			Help: "Records produced by the aggregation stage."}),
		RecordsExported: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_exported_total",
			Help: "Records acknowledged by the collector."}),
		RecordsRetried: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_retried_total",
			Help: "Records sent again after a failed Report."}),
		RecordsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_dropped_total",
			Help: "Records never acknowledged: queue_full (oldest batch dropped), rejected (InvalidArgument), shutdown (flush timed out)."}, []string{"reason"}),
		RecordsDuplicate: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_duplicate_total",
			Help: "Records the collector already had (retries)."}),
		BatchesSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "export_batches_total",
			Help: "Report calls by result."}, []string{"result"}),
		QueueBatches: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "export_queue_batches",
			Help: "Sealed batches waiting to be sent."}),
		ExportLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "export_latency_seconds",
			Help:    "Time from a batch being sealed to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	r.MustRegister(m.EventsReceived, m.EventsDecoded, m.EventsMalformed, m.EventsLost, m.AggregatesOpen,
		m.AggregatesEvict, m.RecordsFlushed, m.RecordsExported, m.RecordsRetried, m.RecordsDropped,
		m.RecordsDuplicate, m.BatchesSent, m.QueueBatches, m.ExportLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Pre-create the label values so they read 0 instead of being absent.
	for _, r := range []string{ReasonUnconfiguredNamespace, ReasonNodeLen, ReasonTruncated, ReasonCarrier,
		ReasonTraceType, ReasonSnapshot, ReasonPacket, ReasonOther} {
		m.EventsMalformed.WithLabelValues(r)
	}
	for _, r := range []string{DropQueueFull, DropRejected, DropTooLarge, DropShutdown} {
		m.RecordsDropped.WithLabelValues(r)
	}
	return m
}
