package ioamstore

import (
	"context"
	"errors"
	"sync"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

var errNotImplemented = errors.New("not implemented yet")

type nameCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (c *nameCache) init()  { c.m = map[string]time.Time{} }
func (c *nameCache) reset() { c.mu.Lock(); c.m = map[string]time.Time{}; c.mu.Unlock() }

// WriteSpans stores one Export batch at once (one badger WriteBatch), split by
// trace, and returns the number of spans written. Spans are stored losslessly
// under their resource and scope. A span with an all-zero trace ID is stored
// too (under that ID). On error nothing of the batch may be assumed written.
func (s *Store) WriteSpans(ctx context.Context, rs []*tracepb.ResourceSpans) (int, error) {
	return 0, errNotImplemented
}

// GetTrace calls fn for each stored group of the trace's spans, each a
// ResourceSpans holding the original resource, scope(s) and spans (at most
// maxSpansPerChunk spans per call). An unknown trace calls fn zero times and
// returns nil. Every call gets a freshly decoded message that fn may keep.
// An error from fn stops the stream and is returned.
func (s *Store) GetTrace(ctx context.Context, traceID [16]byte, fn func(*tracepb.ResourceSpans) error) error {
	return errNotImplemented
}

// GetServices returns the service names with unexpired spans, sorted.
func (s *Store) GetServices(ctx context.Context) ([]string, error) {
	return nil, errNotImplemented
}

// GetOperations returns the operations of service, sorted by name then kind;
// spanKind "" means all kinds, otherwise a lowercase kind as in Operation.
func (s *Store) GetOperations(ctx context.Context, service, spanKind string) ([]Operation, error) {
	return nil, errNotImplemented
}

// FindTraceIDs returns the traces matching q, newest first, at most
// q.SearchDepth. It returns ErrInvalidQuery (wrapped) when q.SearchDepth <= 0,
// when neither Service nor an ioam.* attribute is given, or when a bound is
// inverted.
func (s *Store) FindTraceIDs(ctx context.Context, q Query) ([]FoundTrace, error) {
	return nil, errNotImplemented
}

// GetDependencies returns parent → child service call counts computed from the
// parent links of spans that started in [start, end], loading at most
// Config.DependencyMaxTraces traces.
func (s *Store) GetDependencies(ctx context.Context, start, end time.Time) ([]Dependency, error) {
	return nil, errNotImplemented
}

// WriteRecords stores IOAM records. They are content-addressed: a record whose
// Data is already stored for the same (trace, span) counts as a duplicate and
// is not written again. Records may arrive before or after their spans.
func (s *Store) WriteRecords(ctx context.Context, recs []Record) (accepted, duplicates int, err error) {
	return 0, 0, errNotImplemented
}

// GetRecords returns every record of a trace (any span), sorted by span ID,
// then received time, then content hash.
func (s *Store) GetRecords(ctx context.Context, traceID [16]byte) ([]Record, error) {
	return nil, errNotImplemented
}
