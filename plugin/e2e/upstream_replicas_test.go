//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// buildStorage builds the clt-storage binary of this tree (the build cache
// makes it quick) so replicas can be real processes that kill -9 hits.
func buildStorage(t testing.TB) string {
	out := filepath.Join(t.TempDir(), "clt-storage")
	cmd := exec.Command("go", "build", "-o", out, "../cmd/clt-storage")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build clt-storage: %s", b)
	return out
}

// replicaProc is one clt-storage process in upstream mode on fixed
// addresses, so that a restarted replica is reached at the same place (as
// behind a load balancer).
type replicaProc struct {
	t                        testing.TB
	bin, conf, log           string
	storage, collector, admn string
	mu                       sync.Mutex
	cmd                      *exec.Cmd
	exited                   chan struct{}
}

func newReplicaProc(t testing.TB, bin, dir, upstream string) *replicaProc {
	r := &replicaProc{t: t, bin: bin, storage: freeAddr(t), collector: freeAddr(t), admn: freeAddr(t)}
	r.conf = filepath.Join(dir, "clt-storage-"+r.storage[len("127.0.0.1:"):]+".yaml")
	r.log = r.conf + ".log"
	require.NoError(t, os.WriteFile(r.conf, fmt.Appendf(nil, `log: {level: warn}
storage: {listen: %q}
collector: {listen: %q}
admin: {listen: %q}
upstream:
  endpoint: %q
  health_interval: 100ms
  node_refresh: 0s
`, r.storage, r.collector, r.admn, upstream), 0o644))
	t.Cleanup(r.kill)
	return r
}

// start runs the process and waits for its /healthz.
func (r *replicaProc) start() {
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(r.t, err)
	cmd := exec.Command(r.bin, "--config", r.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(r.t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + r.admn + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(r.log)
			r.t.Fatalf("clt-storage exited at start:\n%s", tail(b, 2000))
		default:
		}
		require.True(r.t, time.Now().Before(deadline), "clt-storage not healthy after 30s")
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone. Idempotent.
func (r *replicaProc) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// balancer spreads calls over replicas as a client-side load balancer
// with retries would: a failed call is retried on the next replica after
// a short pause, until it is acknowledged or the deadline passes.
type balancer struct {
	storage, collector []*grpc.ClientConn
	failures           atomic.Int64
	deadline           time.Time
}

func newBalancer(t testing.TB, reps []*replicaProc, deadline time.Time) *balancer {
	b := &balancer{deadline: deadline}
	dial := func(addr string) *grpc.ClientConn { return dialLoopback(t, addr) }
	for _, r := range reps {
		b.storage = append(b.storage, dial(r.storage))
		b.collector = append(b.collector, dial(r.collector))
	}
	return b
}

// do runs call on replica first, then the others, until one acknowledges.
func (b *balancer) do(ctx context.Context, first int, call func(ctx context.Context, replica int) error) error {
	for i := first; ; i++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := call(cctx, i%len(b.storage))
		cancel()
		if err == nil {
			return nil
		}
		b.failures.Add(1)
		if time.Now().After(b.deadline) || ctx.Err() != nil {
			return fmt.Errorf("not acknowledged before the deadline: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadTraceID is trace i of the load.
func loadTraceID(i int) []byte {
	id := make([]byte, 16)
	id[0], id[1] = 0xc1, 0x09
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

func loadSpans(i int, start time.Time) *coltracepb.ExportTraceServiceRequest {
	id := loadTraceID(i)
	ss := &tracepb.ScopeSpans{}
	for s := range 5 {
		sp := &tracepb.Span{TraceId: id, SpanId: spanID(s), Name: fmt.Sprintf("op-%d", s), Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: uint64(start.Add(time.Duration(s) * time.Millisecond).UnixNano()),
			EndTimeUnixNano:   uint64(start.Add(time.Duration(s+10) * time.Millisecond).UnixNano())}
		if s > 0 {
			sp.ParentSpanId = spanID(0)
		}
		ss.Spans = append(ss.Spans, sp)
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "kill9"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{ss},
	}}}
}

func loadRecord(i int, start time.Time) *collectorv1.IOAMRecord {
	r := record(3, start, 1, 2, 3)
	r.TraceId, r.SpanId = loadTraceID(i), spanID(0)
	return r
}

// TestUpstreamKill9UnderLoad: two clt-storage processes over one
// remote_storage tier take a bounded load (traces of 5 spans exported
// through OTLP, each with a record reported through the collector API)
// from clients that retry on the other replica; each replica is SIGKILLed
// mid-load and restarted. Every acknowledged span and record is then read
// back, enriched: an acknowledgement only follows the upstream's answer,
// so killing the stateless layer loses nothing it acknowledged.
func TestUpstreamKill9UnderLoad(t *testing.T) {
	bin := jaegerBin(t)
	storageBin := buildStorage(t)
	dir := t.TempDir()
	remote := startTier(t, bin, dir, fmt.Sprintf(upstreamBadger, filepath.Join(dir, "badger")))

	reps := []*replicaProc{newReplicaProc(t, storageBin, dir, remote), newReplicaProc(t, storageBin, dir, remote)}
	for _, r := range reps {
		r.start()
	}
	const traces, workers = 600, 4
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	lb := newBalancer(t, reps, time.Now().Add(90*time.Second))
	start := time.Now().Add(-time.Minute)

	var acked atomic.Int64 // traces whose spans and record are both acknowledged
	var ackedSpans, ackedRecords sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < traces; i += workers {
				err := lb.do(ctx, i, func(ctx context.Context, rep int) error {
					_, err := coltracepb.NewTraceServiceClient(lb.storage[rep]).Export(ctx, loadSpans(i, start))
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("trace %d spans: %w", i, err)
					return
				}
				ackedSpans.Store(i, true)
				err = lb.do(ctx, i+1, func(ctx context.Context, rep int) error {
					_, err := collectorv1.NewCollectorServiceClient(lb.collector[rep]).Report(ctx,
						&collectorv1.ReportRequest{AgentId: "kill9", Records: []*collectorv1.IOAMRecord{loadRecord(i, start)}})
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("trace %d record: %w", i, err)
					return
				}
				ackedRecords.Store(i, true)
				acked.Add(1)
			}
		})
	}
	// Kill each replica once mid-load (a quarter and half-way through),
	// restart it after a pause during which the other one carries the load.
	kills := 0
	for k, at := range []int64{traces / 4, traces / 2} {
		for acked.Load() < at && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		if acked.Load() >= traces {
			break
		}
		reps[k].kill()
		kills++
		time.Sleep(300 * time.Millisecond)
		reps[k].start()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, 2, kills, "both kills landed mid-load")
	require.EqualValues(t, traces, acked.Load(), "every trace acknowledged in the end")
	t.Logf("%d traces acknowledged through %d kill -9; %d calls failed and were retried", traces, kills, lb.failures.Load())
	assert.Positive(t, lb.failures.Load(), "the kills interrupted calls in flight or refused new ones")

	// Everything acknowledged is there, enriched, read through either replica.
	reader := func(rep int) storagev2.TraceReaderClient { return storagev2.NewTraceReaderClient(lb.storage[rep]) }
	missingSpans, unenriched := 0, 0
	for lo := 0; lo < traces; lo += 50 {
		req := &storagev2.GetTracesRequest{}
		for i := lo; i < min(lo+50, traces); i++ {
			req.Query = append(req.Query, &storagev2.GetTraceParams{TraceId: loadTraceID(i)})
		}
		stream, err := reader(lo/50%2).GetTraces(ctx, req)
		require.NoError(t, err)
		spans := map[string]map[string]bool{} // trace → span ids
		paths := map[string]string{}          // trace → ioam path of span 0
		for {
			td, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			for _, rs := range td.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					for _, sp := range ss.Spans {
						tr := string(sp.TraceId)
						if spans[tr] == nil {
							spans[tr] = map[string]bool{}
						}
						spans[tr][string(sp.SpanId)] = true
						if string(sp.SpanId) == string(spanID(0)) {
							for _, kv := range sp.Attributes {
								if kv.Key == plugin.AttrPath {
									paths[tr] = kv.Value.GetStringValue()
								}
							}
						}
					}
				}
			}
		}
		for i := lo; i < min(lo+50, traces); i++ {
			got := spans[string(loadTraceID(i))]
			for s := range 5 {
				if _, ok := ackedSpans.Load(i); ok && !got[string(spanID(s))] {
					missingSpans++
				}
			}
			if _, ok := ackedRecords.Load(i); ok && paths[string(loadTraceID(i))] != "1 > 2 > 3" {
				unenriched++
			}
		}
	}
	assert.Zero(t, missingSpans, "acknowledged spans missing")
	assert.Zero(t, unenriched, "acknowledged records missing (span not enriched)")
}

// BenchmarkUpstreamScaling: ingest (Export of 100-span batches from 8
// concurrent clients) through 1 and through 2 clt-storage processes over
// one remote_storage tier (memory backend), clients spread evenly over the
// replicas, and (replicas=0) straight to the tier. Every process shares this machine's cores, so the factor is
// what two replicas give on one host, not on two. Figures: docs/benchmarks.md.
func BenchmarkUpstreamScaling(b *testing.B) {
	bin := jaegerBin(b)
	storageBin := buildStorage(b)
	dir := b.TempDir()
	remote := startTier(b, bin, dir, upstreamMemory)
	reps := []*replicaProc{newReplicaProc(b, storageBin, dir, remote), newReplicaProc(b, storageBin, dir, remote)}
	for _, r := range reps {
		r.start()
	}
	lb := newBalancer(b, reps, time.Now().Add(time.Hour))
	direct, err := grpc.NewClient(remote, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = direct.Close() })
	start := time.Now().Add(-time.Minute)
	var batch atomic.Uint64
	// replicas=0: the same clients straight to the upstream, for the
	// layer's cost at this concurrency.
	for _, n := range []int{0, 1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			var client atomic.Int64
			b.SetParallelism(max(1, 8/runtimeProcs()))
			b.RunParallel(func(pb *testing.PB) {
				conn := direct
				if n > 0 {
					conn = lb.storage[int(client.Add(1))%n]
				}
				c := coltracepb.NewTraceServiceClient(conn)
				for pb.Next() {
					tid := make([]byte, 16)
					binary.BigEndian.PutUint64(tid[8:], batch.Add(1))
					tid[0] = 0x5c
					if err := exportTrace(context.Background(), c, tid, 100, start); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
