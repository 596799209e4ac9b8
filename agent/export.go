package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf"
)

// Exporter takes flushed records. Export must not block on the network: it
// queues (bounded) and returns.
type Exporter interface {
	// Export hands records over; the exporter owns the slice afterwards.
	Export(recs []*collectorv1.IOAMRecord)
	// Start starts background work.
	Start(ctx context.Context) error
	// Close flushes what it can within the configured bound and stops.
	Close() error
}

// batch is a sealed group of records with a stable id, retried as a whole.
type batch struct {
	id     uint64
	recs   []*collectorv1.IOAMRecord
	sealed time.Time
}

// GRPCExporter sends records to the collector API in acknowledged batches.
//
// Delivery is at least once. A batch is retried (same batch id, whole batch)
// with exponential backoff and jitter until acknowledged when the failure is
// one OTLP calls retryable (see [classify]); a batch the server finds too
// large is split in halves, and any other answer drops the batch, counted as
// rejected, so one refused batch never stalls the ones behind it. Sealed batches wait in
// a queue of at most export.queue_max_batches; when it is full the oldest
// waiting batch is dropped (its records counted as dropped, reason
// queue_full), so fresh data wins over stale data. Safe for concurrent use.
type GRPCExporter struct {
	cfg     ExportConfig
	agentID string
	log     *slog.Logger
	m       *Metrics
	dial    func() (*grpc.ClientConn, error)

	mu      sync.Mutex
	cond    *sync.Cond
	pending []*collectorv1.IOAMRecord
	first   time.Time // when pending got its first record
	queue   []*batch
	nextID  uint64
	closing bool

	conn      *grpc.ClientConn
	client    collectorv1.CollectorServiceClient
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	sealStop  context.CancelFunc
	sealWG    sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
	rejectLog sync.Once
	started   bool
}

var _ Exporter = (*GRPCExporter)(nil)

// NewGRPCExporter returns an exporter for cfg.Collector. It does not connect yet.
func NewGRPCExporter(cfg ExportConfig, agentID string, log *slog.Logger, m *Metrics) (*GRPCExporter, error) {
	creds, err := transportCredentials(cfg.TLS)
	if err != nil {
		return nil, err
	}
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("export token_file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return nil, fmt.Errorf("export token_file %s: empty", cfg.TokenFile)
		}
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearerToken(tok)))
	}
	e := &GRPCExporter{cfg: cfg, agentID: agentID, log: log, m: m}
	e.cond = sync.NewCond(&e.mu)
	e.dial = func() (*grpc.ClientConn, error) {
		// Reconnect on the same schedule as the retries, not gRPC's default
		// (up to 120 s), so a restarted collector is reached promptly.
		bc := grpcbackoff.DefaultConfig
		bc.BaseDelay, bc.MaxDelay = cfg.BackoffInitial, cfg.BackoffMax
		return grpc.NewClient(cfg.Collector, append(dialOpts,
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: cfg.Timeout}))...)
	}
	return e, nil
}

// bearerToken sends `authorization: Bearer <token>` with every RPC, only
// over TLS.
type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }

func transportCredentials(t TLSConfig) (credentials.TransportCredentials, error) {
	if !t.Enabled {
		return insecure.NewCredentials(), nil
	}
	tc, err := tlsconf.ClientConfig("export tls", tlsconf.Client{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName})
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(tc), nil
}

// Start connects (lazily; gRPC reconnects by itself) and starts the sender.
func (e *GRPCExporter) Start(ctx context.Context) error {
	var err error
	e.startOnce.Do(func() {
		var conn *grpc.ClientConn
		conn, err = e.dial()
		if err != nil {
			err = fmt.Errorf("export: dial %s: %w", e.cfg.Collector, err)
			return
		}
		e.mu.Lock()
		e.conn = conn
		e.client = collectorv1.NewCollectorServiceClient(conn)
		e.started = true
		e.mu.Unlock()
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		e.cancel = cancel
		sealCtx, sealStop := context.WithCancel(sctx)
		e.sealStop = sealStop
		e.wg.Go(func() { e.sendLoop(sctx) })
		e.sealWG.Go(func() { e.sealLoop(sealCtx) })
	})
	return err
}

// Export appends records to the open batch, sealing it when full.
func (e *GRPCExporter) Export(recs []*collectorv1.IOAMRecord) {
	if len(recs) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		e.m.RecordsDropped.WithLabelValues(DropShutdown).Add(float64(len(recs)))
		return
	}
	for len(recs) > 0 {
		if len(e.pending) == 0 {
			e.first = time.Now()
		}
		n := min(len(recs), e.cfg.BatchMaxRecords-len(e.pending))
		e.pending = append(e.pending, recs[:n]...)
		recs = recs[n:]
		if len(e.pending) >= e.cfg.BatchMaxRecords {
			e.sealLocked()
		}
	}
}

// sealLocked moves the open batch into the queue, dropping the oldest waiting
// batch when the queue is full.
func (e *GRPCExporter) sealLocked() {
	if len(e.pending) == 0 {
		return
	}
	e.nextID++
	b := &batch{id: e.nextID, recs: e.pending, sealed: time.Now()}
	e.pending = nil
	if len(e.queue) >= e.cfg.QueueMaxBatches {
		old := e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.m.RecordsDropped.WithLabelValues(DropQueueFull).Add(float64(len(old.recs)))
	}
	e.queue = append(e.queue, b)
	e.m.QueueBatches.Set(float64(len(e.queue)))
	e.cond.Broadcast()
}

// sealLoop seals the open batch once it is export.batch_max_delay old.
func (e *GRPCExporter) sealLoop(ctx context.Context) {
	tick := time.NewTicker(max(e.cfg.BatchMaxDelay/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		e.mu.Lock()
		if len(e.pending) > 0 && time.Since(e.first) >= e.cfg.BatchMaxDelay {
			e.sealLocked()
		}
		e.mu.Unlock()
	}
}

// next blocks until a sealed batch is available, or returns nil when ctx ends
// or the exporter is closing with nothing left.
func (e *GRPCExporter) next(ctx context.Context) *batch {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.queue) == 0 {
		if ctx.Err() != nil || e.closing {
			return nil
		}
		e.cond.Wait()
	}
	b := e.queue[0]
	e.queue[0] = nil
	e.queue = e.queue[1:]
	e.m.QueueBatches.Set(float64(len(e.queue)))
	return b
}

func (e *GRPCExporter) sendLoop(ctx context.Context) {
	// Wake next() when ctx ends.
	stop := context.AfterFunc(ctx, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer stop()
	for {
		b := e.next(ctx)
		if b == nil {
			return
		}
		if !e.deliver(ctx, b) {
			// ctx ended with b unacknowledged (deliver counted it).
			e.dropQueued()
			return
		}
	}
}

func (e *GRPCExporter) dropQueued() {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.pending)
	for _, b := range e.queue {
		n += len(b.recs)
	}
	e.queue, e.pending = nil, nil
	e.m.QueueBatches.Set(0)
	e.m.RecordsDropped.WithLabelValues(DropShutdown).Add(float64(n))
}

// outcome is what the exporter does with a failed Report.
type outcome int

const (
	outcomeRetry  outcome = iota // transient: retry the same batch after a backoff
	outcomeSplit                 // the batch is too large for the server: send it in halves
	outcomeReject                // permanent: drop the batch, counted as rejected
)

// classify applies the OTLP/gRPC retry rules (OTLP specification,
// "Failures" and "Throttling"): Canceled, DeadlineExceeded, Aborted,
// OutOfRange, Unavailable and DataLoss are transient; ResourceExhausted is
// retryable only when the server sends RetryInfo (throttling), otherwise the
// message was too large (gRPC's own size limit answers ResourceExhausted
// without it) and splitting is what can succeed. Everything else
// (InvalidArgument, Unimplemented, PermissionDenied, Unauthenticated, a local
// marshal error surfacing as Internal, …) does not change by retrying. It
// also returns the server's requested retry delay, if any.
func classify(err error) (outcome, time.Duration) {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange,
		codes.Unavailable, codes.DataLoss:
		return outcomeRetry, 0
	case codes.ResourceExhausted:
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				return outcomeRetry, ri.GetRetryDelay().AsDuration()
			}
		}
		return outcomeSplit, 0
	}
	return outcomeReject, 0
}

// deliver sends b until it is acknowledged or dropped (true), or ctx ends
// (false; b's records are then counted as dropped at shutdown).
func (e *GRPCExporter) deliver(ctx context.Context, b *batch) bool {
	req := &collectorv1.ReportRequest{AgentId: e.agentID, BatchId: b.id, Records: b.recs}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			e.m.RecordsRetried.Add(float64(len(b.recs)))
		}
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		resp, err := e.client.Report(cctx, req)
		cancel()
		if err == nil {
			e.m.BatchesSent.WithLabelValues("ok").Inc()
			e.m.RecordsExported.Add(float64(len(b.recs)))
			e.m.RecordsDuplicate.Add(float64(resp.GetDuplicates()))
			e.m.ExportLatency.Observe(time.Since(b.sealed).Seconds())
			return true
		}
		if ctx.Err() != nil {
			e.m.RecordsDropped.WithLabelValues(DropShutdown).Add(float64(len(b.recs)))
			return false
		}
		what, delay := classify(err)
		switch {
		case what == outcomeSplit && len(b.recs) > 1:
			e.m.BatchesSent.WithLabelValues("split").Inc()
			e.log.Debug("collector refused a batch as too large; splitting it", "batch_id", b.id, "records", len(b.recs), "err", err)
			half := len(b.recs) / 2
			first, second := e.subBatch(b, b.recs[:half]), e.subBatch(b, b.recs[half:])
			if !e.deliver(ctx, first) {
				e.m.RecordsDropped.WithLabelValues(DropShutdown).Add(float64(len(second.recs)))
				return false
			}
			return e.deliver(ctx, second)
		case what == outcomeSplit, what == outcomeReject:
			reason := DropRejected
			if what == outcomeSplit {
				reason = DropTooLarge
			}
			e.m.BatchesSent.WithLabelValues("rejected").Inc()
			e.m.RecordsDropped.WithLabelValues(reason).Add(float64(len(b.recs)))
			e.rejectLog.Do(func() {
				e.log.Warn("collector refused a batch; not retrying it (further refusals are only counted in clt_agent_records_dropped_total)",
					"batch_id", b.id, "records", len(b.recs), "code", status.Code(err).String(), "err", err)
			})
			return true
		}
		e.m.BatchesSent.WithLabelValues("error").Inc()
		if attempt == 0 {
			e.log.Debug("report failed; retrying", "batch_id", b.id, "err", err)
		}
		wait := backoff(e.cfg.BackoffInitial, e.cfg.BackoffMax, attempt)
		if delay > 0 {
			wait = min(max(wait, delay), e.cfg.BackoffMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			e.m.RecordsDropped.WithLabelValues(DropShutdown).Add(float64(len(b.recs)))
			return false
		case <-t.C:
		}
	}
}

// subBatch is part of b sent on its own after a split: a new batch id (the
// server's dedupe is by record content, so a retried half is still stored
// once), b's seal time for the latency metric.
func (e *GRPCExporter) subBatch(b *batch, recs []*collectorv1.IOAMRecord) *batch {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nextID++
	return &batch{id: e.nextID, recs: recs, sealed: b.sealed}
}

// backoff is initial·2^attempt capped at maxD, with ±50 % jitter (so many
// agents restarting together do not retry in lockstep).
func backoff(initial, maxD time.Duration, attempt int) time.Duration {
	d := initial
	for i := 0; i < attempt && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	return d/2 + rand.N(d)
}

// Close seals the open batch, lets the sender drain the queue for at most
// export.shutdown_timeout, then stops it; what is left is counted as dropped
// (reason shutdown). Idempotent; safe without Start.
func (e *GRPCExporter) Close() error {
	var err error
	e.closeOnce.Do(func() {
		e.mu.Lock()
		started := e.started
		e.mu.Unlock()
		if started {
			e.sealStop()
			e.sealWG.Wait()
		}
		e.mu.Lock()
		e.sealLocked()
		e.closing = true
		e.cond.Broadcast()
		e.mu.Unlock()
		if !started {
			e.dropQueued()
			return
		}
		done := make(chan struct{})
		go func() { e.wg.Wait(); close(done) }()
		t := time.NewTimer(e.cfg.ShutdownTimeout)
		select {
		case <-done:
		case <-t.C:
			e.cancel()
			<-done
		}
		t.Stop()
		e.cancel()
		e.dropQueued()
		err = e.conn.Close()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	})
	return err
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
