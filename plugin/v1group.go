package plugin

import (
	"context"
	"sync"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Group commit of Jaeger v1's unary WriteSpan. Jaeger v1 writes one span per
// call from a pool of workers (10 exporter consumers in v1.76, each writing
// its batch span by span), so a store write per call spends most of its
// work on the write rather than the span. Calls that arrive while a write is
// in progress join one batch, written at once by its first caller when the
// write before it is done: no extra goroutine, no timer, and a lone call is
// written at once, as before. Every caller returns when its batch is
// stored, with the batch's outcome.

// maxV1GroupSpans bounds one group write; later callers start the next.
const maxV1GroupSpans = 1000

// v1Group batches concurrent single-span writes into one store write.
type v1Group struct {
	write func(context.Context, []*tracepb.ResourceSpans) (rejected int64, reason string, err error)

	mu      sync.Mutex // guards pending
	pending *v1GroupBatch
	writeMu sync.Mutex // held by the batch being written: one at a time
}

type v1GroupBatch struct {
	rs       []*tracepb.ResourceSpans
	done     chan struct{} // closed when the batch is written
	rejected int64
	reason   string
	err      error
}

// add writes r with whatever other calls bring meanwhile and returns the
// batch's outcome: rejected spans of the batch (with the first reason)
// and the store error, both shared by every span written together.
func (g *v1Group) add(ctx context.Context, r *tracepb.ResourceSpans) (n int, rejected int64, reason string, err error) {
	g.mu.Lock()
	b := g.pending
	if b == nil || len(b.rs) >= maxV1GroupSpans {
		b = &v1GroupBatch{done: make(chan struct{})}
		g.pending = b
	}
	b.rs = append(b.rs, r)
	lead := len(b.rs) == 1
	g.mu.Unlock()
	if !lead {
		<-b.done
		return len(b.rs), b.rejected, b.reason, b.err
	}
	g.writeMu.Lock()
	g.mu.Lock()
	if g.pending == b {
		g.pending = nil // sealed: later calls form the next batch
	}
	g.mu.Unlock()
	// The callers wait for this write whatever happens to the first one's
	// call, so its cancellation must not fail theirs.
	b.rejected, b.reason, b.err = g.write(context.WithoutCancel(ctx), b.rs)
	g.writeMu.Unlock()
	close(b.done)
	return len(b.rs), b.rejected, b.reason, b.err
}
