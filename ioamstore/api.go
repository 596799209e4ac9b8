package ioamstore

import (
	"errors"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// ErrInvalidQuery is returned by FindTraceIDs for a query that cannot be run
// (no service and no ioam.* key, SearchDepth <= 0, inverted bounds).
var ErrInvalidQuery = errors.New("invalid query")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("store closed")

// ErrValueTooLarge: a single span is larger than the in-memory store can
// keep as one value (InMemoryMaxValue); the on-disk store has no such limit.
var ErrValueTooLarge = errors.New("over the in-memory store's value limit")

// Operation is one (span name, span kind) pair seen for a service.
type Operation struct {
	Name string
	// SpanKind is lowercase: server, client, producer, consumer, internal, or
	// "" for unspecified.
	SpanKind string
}

// Query is a trace search. A trace matches when ONE of its spans satisfies
// every set predicate (Jaeger storage v2 semantics).
type Query struct {
	// Service is the resource attribute service.name. Required unless
	// Attributes holds ioam.node_id or ioam.namespace_id.
	Service string
	// Operation is the span name ("" = any).
	Operation string
	// Attributes must all be found on the span, its scope, its resource or one
	// of its events, compared by the string form of the stored value (int 123
	// matches "123", bool "true", double "72.5"). Special keys: "error"
	// ("true" = status ERROR or an error=true attribute, "false" = status not
	// ERROR), "ioam.node_id" and "ioam.namespace_id" (an IOAM record of the
	// span has that node / namespace).
	Attributes map[string]string
	// AnyNode, when set, requires an IOAM record of the span whose node ids
	// include one of these (short or wide ids): how a router is searched as
	// a service. Like ioam.node_id it needs no Service.
	AnyNode []uint64
	// RecordMatch, with AnyNode, further requires that record's Data to
	// satisfy it (the plugin checks a network link there).
	RecordMatch func(data []byte) bool
	// StartMin and StartMax bound the span start time (zero = unbounded).
	StartMin, StartMax time.Time
	// DurationMin and DurationMax bound the span duration (zero = no bound).
	DurationMin, DurationMax time.Duration
	// SearchDepth is the maximum number of traces returned; it must be > 0
	// (the plugin applies Jaeger's default).
	SearchDepth int
	// Derived, when set, answers the attribute predicates on the keys it
	// derives (never error, ioam.node_id or ioam.namespace_id) from what
	// reads add to a span (clt-storage's enrichment), not from the stored
	// span: a span matches when Derived.Attributes of its records has every
	// such key=value (string form, as above). Only traces with IOAM records
	// can match; they are decided from their records before the trace is
	// read.
	Derived Deriver
	// DerivedBudget bounds the candidate traces whose records are derived
	// for one search (0 = unbounded); the search stops there, with the
	// matches found so far, and Stats.QueriesDerivedCut counts it.
	DerivedBudget int
}

// Deriver computes attributes that exist only at read time (clt-storage's
// IOAM enrichment), so that a search finds exactly the traces whose
// enriched spans carry them.
type Deriver interface {
	// Derives reports whether predicates on key are answered by Attributes.
	Derives(key string) bool
	// Attributes returns every attribute reads add to the span spanID (on
	// the span or one of its events) given its IOAM records (never empty).
	Attributes(spanID [8]byte, recs []Record) []*commonpb.KeyValue
}

// FoundTrace is one FindTraceIDs result. Start and End are the earliest span
// start and latest span end of the whole trace.
type FoundTrace struct {
	TraceID    [16]byte
	Start, End time.Time
}

// TraceMatch is one FindTraces result.
type TraceMatch struct {
	FoundTrace
	// Spans is the whole trace (not only the matching span), one
	// ResourceSpans per stored group in the order GetTrace hands them over.
	Spans []*tracepb.ResourceSpans
	// Records are the trace's IOAM records, ordered as GetRecords orders them.
	Records []Record
	// Chunks is set by FindTraceChunks instead of Spans: it hands fn each
	// stored chunk of the whole trace as GetTraceChunks does, reading them
	// in the search's snapshot (copies in slices from buf, nil: the heap).
	// It can be called only during the callback.
	Chunks func(buf Alloc, fn func([]byte) error) error
}

// RecordedSpan is what GetDependencies hands over about a span with IOAM
// records, so the caller can draw the network between the services.
type RecordedSpan struct {
	// Service is the span's service.
	Service string
	// Children are the services of the span's child spans, one entry per
	// child span of another service (the direct edges GetDependencies
	// counted for this span).
	Children []string
	// Records are the Data of the span's records.
	Records [][]byte
}

// Dependency is a parent → child service call count.
type Dependency struct {
	Parent, Child string
	CallCount     uint64
}

// Record is one IOAM record attached to a span. Data is opaque to the store
// (marshaled by the plugin); NodeIDs and NamespaceID are indexed for search.
// NodeIDs holds short (24-bit) and wide (56-bit) node ids alike: a search for
// a value finds either.
type Record struct {
	TraceID     [16]byte
	SpanID      [8]byte
	NodeIDs     []uint64
	NamespaceID uint16
	Received    time.Time
	Data        []byte
	// Excess, set by reads only, counts the records of the same span
	// beyond Config.MaxRecordsPerSpan that were not returned; sum it over
	// a span's records (> MaxExcessCounted: at least that many).
	Excess int
}

// Stats are cumulative counters since Open (the plugin exports them as
// Prometheus metrics).
type Stats struct {
	SpansWritten        uint64 // spans accepted by WriteSpans
	SpanBatches         uint64 // WriteSpans calls that wrote something
	SpansSkipped        uint64 // spans dropped by WriteSpans: trace ID not 16 bytes
	RecordsWritten      uint64 // records stored by WriteRecords
	RecordDuplicates    uint64 // records already present (content-addressed)
	GCRuns              uint64 // value-log GC passes started
	GCRewrites          uint64 // value-log files rewritten (RunValueLogGC returned nil)
	GCErrors            uint64 // RunValueLogGC errors other than "nothing to collect"
	LastGC              time.Time
	QueriesCandidates   uint64 // traces loaded to verify FindTraceIDs / FindTraces candidates
	QueriesDerivedCut   uint64 // searches stopped by Query.DerivedBudget
	QueriesIndexEntries uint64 // index entries scanned by FindTraceIDs / FindTraces
	ReclaimRuns         uint64 // Reclaim passes (idle rewrites of the LSM tree)
	ReclaimErrors       uint64 // Reclaim passes that failed
	SearchWaits         uint64 // searches that waited for a max_concurrent_searches slot
	PageOuts            uint64 // table page-outs (resident file pages over table_pages_mb)
	PageOutErrors       uint64 // page-outs madvise refused
}
