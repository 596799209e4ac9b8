//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// envInt reads a positive integer knob, else def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	require.Positive(t, n, name)
	return n
}

// ordinaryExport is an OTLP Export of about wireMiB MiB of ordinary spans
// (≈ 120 bytes each: ids, name, kind, times, two short attributes), 1000
// per trace, its trace ids made unique by seed. Written with protowire:
// building half a million span structs per client would take longer than
// the test.
func ordinaryExport(seed uint64, wireMiB int) []byte {
	const perTrace = 1000
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	kv := func(b []byte, key string, value []byte) []byte {
		return bytesField(b, 9, bytesField(bytesField(nil, 1, []byte(key)), 2, value))
	}
	strValue := bytesField(nil, 1, []byte("10.1.2.3"))
	intValue := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 200)
	resource := bytesField(nil, 1, bytesField(bytesField(nil, 1, []byte("service.name")), 2, bytesField(nil, 1, []byte("mem-test"))))
	scope := bytesField(nil, 1, []byte("mem"))
	start := uint64(time.Now().Add(-time.Minute).UnixNano())
	var req, spans, span []byte
	for tr := uint64(0); len(req) < wireMiB<<20; tr++ {
		tid := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, seed), tr+1)
		spans = bytesField(spans[:0], 1, scope) // scope_spans: scope, spans
		for i := range uint64(perTrace) {
			span = bytesField(span[:0], 1, tid)
			span = bytesField(span, 2, binary.BigEndian.AppendUint64(nil, tr<<16|i+1))
			if i > 0 {
				span = bytesField(span, 4, binary.BigEndian.AppendUint64(nil, tr<<16|1))
			}
			span = bytesField(span, 5, []byte("GET /api/item"))
			span = protowire.AppendVarint(protowire.AppendTag(span, 6, protowire.VarintType), uint64(tracepb.Span_SPAN_KIND_SERVER))
			span = protowire.AppendFixed64(protowire.AppendTag(span, 7, protowire.Fixed64Type), start+i*1000)
			span = protowire.AppendFixed64(protowire.AppendTag(span, 8, protowire.Fixed64Type), start+i*1000+5e5)
			span = kv(span, "http.status_code", intValue)
			span = kv(span, "net.peer", strValue)
			spans = bytesField(spans, 2, span)
		}
		req = bytesField(req, 1, bytesField(bytesField(nil, 1, resource), 2, spans)) // resource_spans: resource, scope_spans
	}
	return req
}

// procStatus reads a field of /proc/<pid>/status in KiB.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", f.Name(), field)
}

type rawExport []byte

type rawExportCodec struct{}

func (rawExportCodec) Marshal(v any) ([]byte, error) { return v.(rawExport), nil }
func (rawExportCodec) Unmarshal(b []byte, v any) error {
	return proto.Unmarshal(b, v.(proto.Message))
}
func (rawExportCodec) Name() string { return "proto" }

// TestConcurrentLargeExportsStayInBudget (issue 12): 8 clients send one
// 57 MiB Export of ordinary spans each (≈ 520k spans) at once to a real
// clt-storage process. Each reserves its decoded cost (wire ×
// decodeCostFactor) in max_in_flight_mib before it is decoded, so they
// take turns: the others get ResourceExhausted with RetryInfo and succeed
// on retry, and the process's peak RSS (VmHWM) stays within the budget
// plus its resting size (before: 8.3 GB). CLT_MEM_EXPORT_MIB and
// CLT_MEM_CLIENTS scale it; figures in docs/benchmarks.md.
func TestConcurrentLargeExportsStayInBudget(t *testing.T) {
	wireMiB := envInt(t, "CLT_MEM_EXPORT_MIB", 57)
	clients := envInt(t, "CLT_MEM_CLIENTS", 8)
	// 512 MiB: each 57 MiB Export (912 MiB reserved) runs alone and the
	// tap refuses the others before reading them, so retries cost nothing.
	budgetMiB := envInt(t, "CLT_MEM_BUDGET_MIB", 512)
	bin := os.Getenv("CLT_MEM_STORAGE_BIN") // another build, to compare
	if bin == "" {
		bin = buildCltStorage(t)
	}
	dir := t.TempDir()
	storage, admin := freeAddr(t), freeAddr(t)
	conf := filepath.Join(dir, "clt-storage.yaml")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `storage:
  listen: %s
  max_recv_msg_size_mib: 64
  max_in_flight_mib: %d
collector:
  listen: ""
admin:
  listen: %s
store:
  dir: %s
log:
  level: warn
`, storage, budgetMiB, admin, filepath.Join(dir, "data")), 0o644))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", conf)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	exited := waitProc(cmd)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited.done
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + admin + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "clt-storage did not become healthy")
	pid := cmd.Process.Pid

	reqs := make([][]byte, clients)
	for i := range reqs {
		reqs[i] = ordinaryExport(uint64(i+1), wireMiB)
	}
	var check coltracepb.ExportTraceServiceRequest
	require.NoError(t, proto.Unmarshal(ordinaryExport(0, 1), &check))
	require.Equal(t, 1000, len(check.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()))
	restKiB, err := procStatus(pid, "VmRSS")
	require.NoError(t, err)
	// The bound: the budget, the resting size, and the wire bytes of the
	// requests gRPC reads before the codec sees them (each until it is
	// refused, at most all of them at once).
	// One request costing more than the whole budget runs alone, so the
	// in-flight part is the larger of the budget and one request's cost
	// (plugin's decodeCostFactor, 16).
	boundKiB := restKiB + int64(max(budgetMiB, 16*wireMiB))<<10 + int64(clients*wireMiB)<<10
	// Sampled so that a run going far beyond is stopped before it takes
	// the machine (the test then fails on VmHWM).
	var peak atomic.Int64
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			rss, err := procStatus(pid, "VmRSS")
			if err != nil {
				return
			}
			if rss > peak.Load() {
				peak.Store(rss)
			}
			if rss > 2*boundKiB {
				_ = cmd.Process.Kill()
				return
			}
		}
	})

	conn, err := grpc.NewClient(storage, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.ForceCodec(rawExportCodec{})))
	require.NoError(t, err)
	defer conn.Close()
	var refused atomic.Int64
	errs := make([]error, clients)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for {
				var resp coltracepb.ExportTraceServiceResponse
				err := conn.Invoke(ctx, coltracepb.TraceService_Export_FullMethodName, rawExport(reqs[i]), &resp)
				if err == nil && resp.GetPartialSuccess().GetRejectedSpans() > 0 {
					err = fmt.Errorf("rejected: %v", resp.GetPartialSuccess())
				}
				if status.Code(err) != codes.ResourceExhausted {
					errs[i] = err
					return
				}
				refused.Add(1)
				delay := time.Duration(0)
				for _, d := range status.Convert(err).Details() {
					if ri, ok := d.(*errdetails.RetryInfo); ok {
						delay = ri.GetRetryDelay().AsDuration()
					}
				}
				if delay == 0 {
					errs[i] = fmt.Errorf("ResourceExhausted without RetryInfo: %w", err)
					return
				}
				select {
				case <-ctx.Done():
					errs[i] = ctx.Err()
					return
				case <-time.After(delay):
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	close(stopWatch)
	watch.Wait()
	hwm, err := procStatus(pid, "VmHWM")
	require.NoError(t, err, "clt-storage exited (killed beyond twice the bound?)")
	for i, err := range errs {
		assert.NoError(t, err, "client %d", i)
	}
	t.Logf("%d × %d MiB Exports (budget %d MiB): %s, %d refusals retried; VmRSS at rest %d MiB, sampled peak %d MiB, VmHWM %d MiB (bound %d MiB)",
		clients, wireMiB, budgetMiB, elapsed.Round(100*time.Millisecond), refused.Load(), restKiB>>10, peak.Load()>>10, hwm>>10, boundKiB>>10)
	assert.Positive(t, refused.Load(), "concurrent Exports beyond the budget are refused and retried")
	assert.LessOrEqual(t, hwm, boundKiB, "peak RSS within budget + resting size + wire bytes")
}
