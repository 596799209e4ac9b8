package agent

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

// fakeCollector is an in-process collector on 127.0.0.1:0 that can fail,
// reject and restart on the same address. Like clt-storage it is idempotent:
// a record is stored once, keyed by (agent, batch, index).
type fakeCollector struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	srv      *grpc.Server
	failNext int  // fail this many calls with Unavailable
	reject   bool // answer InvalidArgument
	// refuse, when set, answers each call it returns an error for (e.g.
	// ResourceExhausted for batches over a size).
	refuse  func(req *collectorv1.ReportRequest) error
	block   chan struct{}
	calls   int
	batches []uint64
	stored  map[[2]uint64]*collectorv1.IOAMRecord
	order   []*collectorv1.IOAMRecord
}

type fakeService struct {
	collectorv1.UnimplementedCollectorServiceServer
	f *fakeCollector
}

func (s fakeService) Report(ctx context.Context, req *collectorv1.ReportRequest) (*collectorv1.ReportResponse, error) {
	f := s.f
	f.mu.Lock()
	f.calls++
	block := f.block
	if f.failNext > 0 {
		f.failNext--
		f.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "fake: try later")
	}
	if f.reject {
		f.mu.Unlock()
		return nil, status.Error(codes.InvalidArgument, "records[0].trace_id: length 15, want 16")
	}
	if f.refuse != nil {
		if err := f.refuse(req); err != nil {
			f.mu.Unlock()
			return nil, err
		}
	}
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &collectorv1.ReportResponse{BatchId: req.BatchId}
	f.batches = append(f.batches, req.BatchId)
	for i, r := range req.Records {
		k := [2]uint64{req.BatchId, uint64(i)}
		if _, dup := f.stored[k]; dup {
			resp.Duplicates++
			continue
		}
		f.stored[k] = r
		f.order = append(f.order, r)
		resp.Accepted++
	}
	return resp, nil
}

func newFakeCollector(t *testing.T) *fakeCollector {
	t.Helper()
	f := &fakeCollector{t: t, stored: map[[2]uint64]*collectorv1.IOAMRecord{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.addr = lis.Addr().String()
	f.serve(lis)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeCollector) serve(lis net.Listener) {
	srv := grpc.NewServer()
	collectorv1.RegisterCollectorServiceServer(srv, fakeService{f: f})
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(lis) //nolint:errcheck // returns when stopped
}

func (f *fakeCollector) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// restart listens again on the same address.
func (f *fakeCollector) restart() {
	f.t.Helper()
	lis, err := net.Listen("tcp", f.addr)
	require.NoError(f.t, err)
	f.serve(lis)
}

func (f *fakeCollector) records() []*collectorv1.IOAMRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*collectorv1.IOAMRecord(nil), f.order...)
}

func (f *fakeCollector) set(fn func(f *fakeCollector)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}
