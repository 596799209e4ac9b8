package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// compatStreamBatch is how many ioam_api stream messages are written to the
// store at once.
const compatStreamBatch = 256

// collector serves clt.collector.v1.CollectorService and, when enabled, the
// two compat services of the original CLT agents.
type collector struct {
	collectorv1.UnimplementedCollectorServiceServer

	store   Store
	cfg     CollectorConfig
	metrics *metrics
	logger  *slog.Logger
	now     func() time.Time
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
		return 0, 0, status.Error(codes.InvalidArgument, batchError(errs).Error())
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
	return accepted, dups, nil
}

// ioamTraceService adapts the research demo's unary API.
type ioamTraceService struct {
	ioamtrace.UnimplementedIOAMServiceServer
	c *collector
}

// Report stores one trace report; an invalid one is InvalidArgument.
func (s ioamTraceService) Report(ctx context.Context, t *ioamtrace.IOAMTrace) (*emptypb.Empty, error) {
	if _, _, err := s.c.storeRecords(ctx, []*collectorv1.IOAMRecord{FromIOAMTrace(t, s.c.now())}, "trace"); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// ioamAPIService adapts the ioam-api (CLT branch) client-streaming API.
type ioamAPIService struct {
	ioamapi.UnimplementedIOAMServiceServer
	c *collector
}

// Report reads the stream to its end, storing in batches. Invalid traces are
// counted and dropped rather than failing the stream: those agents keep one
// stream open for their lifetime and do not handle per-message errors.
func (s ioamAPIService) Report(stream ioamapi.IOAMService_ReportServer) error {
	ctx := stream.Context()
	batch := make([]*collectorv1.IOAMRecord, 0, compatStreamBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, _, err := s.c.storeRecords(ctx, batch, "trace")
		batch = batch[:0]
		return err
	}
	for {
		t, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if err := flush(); err != nil {
				return err
			}
			return stream.SendAndClose(&emptypb.Empty{})
		}
		if err != nil {
			// Keep what was received before the client went away; its
			// context is already cancelled.
			ctx = context.WithoutCancel(ctx)
			return errors.Join(err, flush())
		}
		rec := FromIOAMAPITrace(t, s.c.now())
		if fe := validateRecord("trace", rec, s.c.cfg.MaxHops); len(fe) > 0 {
			s.c.metrics.recordsRejected.WithLabelValues(fe[0].reason).Inc()
			continue
		}
		batch = append(batch, rec)
		if len(batch) == compatStreamBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}
