package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// collector serves clt.collector.v1.CollectorService and, when enabled, the
// two compat services of the original CLT agents.
type collector struct {
	collectorv1.UnimplementedCollectorServiceServer

	store   Store
	cfg     CollectorConfig
	metrics *metrics
	logger  *slog.Logger
	now     func() time.Time
	// names learns node names and the nodes records mention; nil learns
	// nothing.
	names *NodeNames
	// logged holds the reasons the unary compat API has logged (once per
	// process and reason; the prototype agent hides the errors it gets).
	logged sync.Map
}

var _ collectorv1.CollectorServiceServer = (*collector)(nil)

// Report validates the whole batch, then stores it. An invalid record fails
// the batch with InvalidArgument naming the field; nothing is stored then.
func (c *collector) Report(ctx context.Context, req *collectorv1.ReportRequest) (*collectorv1.ReportResponse, error) {
	if n := len(req.GetAgentId()); n > maxAgentIDBytes {
		c.metrics.recordsRejected.WithLabelValues("agent_id").Add(float64(len(req.GetRecords())))
		return nil, status.Errorf(codes.InvalidArgument, "agent_id: length %d, limit %d", n, maxAgentIDBytes)
	}
	if n := len(req.GetRecords()); n > c.cfg.MaxRecordsPerBatch {
		c.metrics.recordsRejected.WithLabelValues("batch_size").Add(float64(n))
		return nil, status.Errorf(codes.InvalidArgument, "records: %d records, limit %d", n, c.cfg.MaxRecordsPerBatch)
	}
	accepted, dups, err := c.storeRecords(ctx, req.GetRecords(), "records")
	if err != nil {
		return nil, err
	}
	return &collectorv1.ReportResponse{BatchId: req.GetBatchId(), Accepted: uint32(accepted), Duplicates: uint32(dups)}, nil
}

// storeRecords validates and stores records as one unit. field names the list in
// error messages ("records" → "records[3].trace_id: ...").
func (c *collector) storeRecords(ctx context.Context, recs []*collectorv1.IOAMRecord, field string) (int, int, error) {
	var errs []fieldError
	invalid := 0
	for i, r := range recs {
		if fe := validateRecord(fmt.Sprintf("%s[%d]", field, i), r, c.cfg.MaxHops); len(fe) > 0 {
			invalid++
			c.metrics.recordsRejected.WithLabelValues(fe[0].reason).Inc()
			errs = append(errs, fe...)
		}
	}
	if len(errs) > 0 {
		if valid := len(recs) - invalid; valid > 0 {
			c.metrics.recordsRejected.WithLabelValues("batch").Add(float64(valid))
		}
		return 0, 0, batchError(errs)
	}
	if len(recs) == 0 {
		return 0, 0, nil
	}
	now := c.now()
	out := make([]ioamstore.Record, 0, len(recs))
	for _, r := range recs {
		sr, err := toStoreRecord(r, now)
		if err != nil {
			return 0, 0, status.Error(codes.Internal, err.Error())
		}
		out = append(out, sr)
	}
	accepted, dups, err := c.store.WriteRecords(ctx, out)
	if err != nil {
		c.metrics.recordsRejected.WithLabelValues("store").Add(float64(len(recs)))
		return 0, 0, grpcError(fmt.Errorf("write records: %w", err))
	}
	c.metrics.recordsAccepted.Add(float64(accepted))
	c.metrics.recordsDuplicate.Add(float64(dups))
	c.names.Observe(ctx, recs)
	return accepted, dups, nil
}

// ioamTraceService adapts the research demo's unary API.
type ioamTraceService struct {
	ioamtrace.UnimplementedIOAMServiceServer
	c *collector
}

// Report stores one trace report; an invalid one is InvalidArgument (logged
// once per reason: the prototype agent hides the errors it gets). Fields
// that cannot be read correctly are dropped from their hop and counted.
func (s ioamTraceService) Report(ctx context.Context, t *ioamtrace.IOAMTrace) (*emptypb.Empty, error) {
	rec, dropped := FromIOAMTrace(t, s.c.now())
	for _, f := range dropped {
		s.c.metrics.compatDropped.WithLabelValues(apiIOAMTrace, f).Inc()
		if _, done := s.c.logged.LoadOrStore("drop:"+f, true); !done {
			s.c.logger.Warn("ioam_trace: field dropped from a report (logged once per field)", "field", f, "peer", peerAddr(ctx))
		}
	}
	if _, _, err := s.c.storeRecords(ctx, []*collectorv1.IOAMRecord{rec}, "trace"); err != nil {
		if errors.Is(err, ErrInvalidRecords) {
			if fe := validateRecord("trace", rec, s.c.cfg.MaxHops); len(fe) > 0 {
				if _, done := s.c.logged.LoadOrStore("invalid:"+fe[0].reason, true); !done {
					s.c.logger.Warn("ioam_trace: invalid report rejected (logged once per reason)", "reason", fe[0].reason, "err", err, "peer", peerAddr(ctx))
				}
			}
		}
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Compat API names (metric label values).
const (
	apiIOAMTrace = "ioam_trace"
	apiIOAMAPI   = "ioam_api"
)

// Flush triggers of an ioam_api stream (metric label values).
const (
	flushSize     = "size"
	flushInterval = "interval"
	flushEnd      = "end"
)

// ioamAPIService adapts the ioam-api (CLT branch) client-streaming API.
type ioamAPIService struct {
	ioamapi.UnimplementedIOAMServiceServer
	c *collector
}

type recvResult struct {
	t   *ioamapi.IOAMTrace
	err error
}

// Report reads the stream to its end. Those agents keep one stream open for
// their whole life, so traces are written when CompatMaxBatch are waiting or
// CompatFlushInterval after the first of them arrived, whichever comes
// first, and at the stream's end. Invalid traces are dropped and counted
// rather than failing the stream (the agents do not handle per-message
// errors), and logged once per reason per stream. A storage error ends the
// stream with that error; the agent reconnects.
func (s ioamAPIService) Report(stream ioamapi.IOAMService_ReportServer) error {
	ctx := stream.Context()
	// Recv blocks, so it runs in its own goroutine. It ends with the stream:
	// at the client's close or error, or when this handler returns (gRPC then
	// cancels the stream, Recv fails and done is closed). Waiting for it here
	// would deadlock on that last case.
	msgs := make(chan recvResult)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			t, err := stream.Recv()
			select {
			case msgs <- recvResult{t, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	peer := peerAddr(ctx)
	logged := map[string]bool{}
	logOnce := func(key, msg string, args ...any) {
		if !logged[key] {
			logged[key] = true
			s.c.logger.Warn(msg, append(args, "peer", peer)...)
		}
	}
	batch := make([]*collectorv1.IOAMRecord, 0, s.c.cfg.CompatMaxBatch)
	timer := time.NewTimer(s.c.cfg.CompatFlushInterval)
	timer.Stop()
	defer timer.Stop()
	flush := func(ctx context.Context, trigger string) error {
		timer.Stop()
		if len(batch) == 0 {
			return nil
		}
		s.c.metrics.compatFlushes.WithLabelValues(trigger).Inc()
		_, _, err := s.c.storeRecords(ctx, batch, "trace")
		batch = batch[:0]
		return err
	}
	for {
		select {
		case <-timer.C:
			if err := flush(ctx, flushInterval); err != nil {
				return err
			}
		case m := <-msgs:
			if errors.Is(m.err, io.EOF) {
				if err := flush(ctx, flushEnd); err != nil {
					return err
				}
				return stream.SendAndClose(&emptypb.Empty{})
			}
			if m.err != nil {
				// Keep what was received before the client went away; its
				// context is already cancelled.
				if err := flush(context.WithoutCancel(ctx), flushEnd); err != nil {
					return errors.Join(m.err, err)
				}
				return m.err // its status as is (e.g. InvalidArgument for an undecodable message)
			}
			rec, dropped := FromIOAMAPITrace(m.t, s.c.now())
			for _, f := range dropped {
				s.c.metrics.compatDropped.WithLabelValues(apiIOAMAPI, f).Inc()
				logOnce("drop:"+f, "ioam_api: field dropped from a trace (logged once per field and stream)", "field", f)
			}
			if fe := validateRecord("trace", rec, s.c.cfg.MaxHops); len(fe) > 0 {
				s.c.metrics.recordsRejected.WithLabelValues(fe[0].reason).Inc()
				logOnce("invalid:"+fe[0].reason, "ioam_api: invalid trace dropped (logged once per reason and stream)",
					"reason", fe[0].reason, "err", fe[0].Error())
				continue
			}
			batch = append(batch, rec)
			if len(batch) == 1 {
				timer.Reset(s.c.cfg.CompatFlushInterval)
			}
			if len(batch) >= s.c.cfg.CompatMaxBatch {
				if err := flush(ctx, flushSize); err != nil {
					return err
				}
			}
		}
	}
}

// peerAddr is the client's address for logs ("" when unknown).
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
