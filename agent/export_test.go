package agent

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

func testExportConfig(addr string) ExportConfig {
	c := DefaultConfig().Export
	c.Collector = addr
	c.BatchMaxRecords = 10
	c.BatchMaxDelay = 20 * time.Millisecond
	c.QueueMaxBatches = 100
	c.Timeout = time.Second
	c.BackoffInitial = time.Millisecond
	c.BackoffMax = 20 * time.Millisecond
	c.ShutdownTimeout = 2 * time.Second
	return c
}

func mkRecords(n int, tag byte) []*collectorv1.IOAMRecord {
	out := make([]*collectorv1.IOAMRecord, n)
	for i := range out {
		tid := make([]byte, 16)
		tid[0], tid[14], tid[15] = tag, byte(i>>8), byte(i)
		out[i] = &collectorv1.IOAMRecord{TraceId: tid, SpanId: make([]byte, 8), Packets: 1}
	}
	return out
}

func startExporter(t *testing.T, cfg ExportConfig) (*GRPCExporter, *Metrics) {
	t.Helper()
	m := NewMetrics()
	e, err := NewGRPCExporter(cfg, "test-agent", slog.New(slog.DiscardHandler), m)
	require.NoError(t, err)
	require.NoError(t, e.Start(t.Context()))
	t.Cleanup(func() { _ = e.Close() })
	return e, m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestExporterBatchesBySizeAndDelay(t *testing.T) {
	f := newFakeCollector(t)
	e, m := startExporter(t, testExportConfig(f.addr))
	e.Export(mkRecords(25, 1))
	waitFor(t, "25 records", func() bool { return testutil.ToFloat64(m.RecordsExported) == 25 })
	f.mu.Lock()
	batches := append([]uint64(nil), f.batches...)
	f.mu.Unlock()
	assert.Equal(t, []uint64{1, 2, 3}, batches, "two full batches, then the rest after batch_max_delay")
	assert.Equal(t, 25.0, testutil.ToFloat64(m.RecordsExported))
	assert.Equal(t, 3.0, testutil.ToFloat64(m.BatchesSent.WithLabelValues("ok")))
	assert.Equal(t, uint64(3), histCount(t, m.ExportLatency))
}

func TestExporterRetriesWithBackoffUntilAcknowledged(t *testing.T) {
	f := newFakeCollector(t)
	f.set(func(f *fakeCollector) { f.failNext = 4 })
	e, m := startExporter(t, testExportConfig(f.addr))
	e.Export(mkRecords(10, 2))
	waitFor(t, "10 records", func() bool { return testutil.ToFloat64(m.RecordsExported) == 10 })
	assert.Equal(t, 40.0, testutil.ToFloat64(m.RecordsRetried), "4 failed attempts of a 10-record batch")
	assert.Equal(t, 4.0, testutil.ToFloat64(m.BatchesSent.WithLabelValues("error")))
	f.mu.Lock()
	assert.Equal(t, 5, f.calls)
	assert.Equal(t, []uint64{1}, f.batches, "the retried batch keeps its id")
	f.mu.Unlock()
	assert.Zero(t, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropQueueFull)))
}

func TestExporterDoesNotRetryInvalidArgument(t *testing.T) {
	f := newFakeCollector(t)
	f.set(func(f *fakeCollector) { f.reject = true })
	e, m := startExporter(t, testExportConfig(f.addr))
	e.Export(mkRecords(10, 3))
	waitFor(t, "rejection", func() bool { return testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropRejected)) == 10 })
	time.Sleep(50 * time.Millisecond)
	f.mu.Lock()
	assert.Equal(t, 1, f.calls, "no retry after InvalidArgument")
	f.mu.Unlock()
	assert.Zero(t, testutil.ToFloat64(m.RecordsRetried))
}

// A refused batch that retrying cannot fix is dropped and counted; the
// batches behind it are delivered (issue: one ResourceExhausted or
// Unimplemented stalled the agent for ever).
func TestExporterNonRetryableRefusalDoesNotStall(t *testing.T) {
	for _, code := range []codes.Code{codes.Unimplemented, codes.PermissionDenied, codes.Internal, codes.Unknown} {
		t.Run(code.String(), func(t *testing.T) {
			f := newFakeCollector(t)
			refused := true
			f.set(func(f *fakeCollector) {
				f.refuse = func(*collectorv1.ReportRequest) error {
					if refused {
						refused = false
						return status.Error(code, "fake: refused")
					}
					return nil
				}
			})
			cfg := testExportConfig(f.addr)
			cfg.BatchMaxRecords = 5
			e, m := startExporter(t, cfg)
			e.Export(mkRecords(20, 5))
			waitFor(t, "the 15 records behind the refused batch", func() bool { return testutil.ToFloat64(m.RecordsExported) == 15 })
			assert.Equal(t, 5.0, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropRejected)))
			assert.Zero(t, testutil.ToFloat64(m.RecordsRetried), "not retryable")
		})
	}
}

// ResourceExhausted without RetryInfo is gRPC's answer to a message over the
// server's limit: the batch is split until the halves fit, and a single record
// that still does not fit is dropped as too_large.
func TestExporterSplitsOversizedBatch(t *testing.T) {
	f := newFakeCollector(t)
	f.set(func(f *fakeCollector) {
		// More than 3 records are over the limit, and record 7 alone is.
		f.refuse = func(req *collectorv1.ReportRequest) error {
			tooLarge := status.Error(codes.ResourceExhausted, "grpc: received message larger than max")
			if len(req.Records) > 3 {
				return tooLarge
			}
			for _, r := range req.Records {
				if r.TraceId[15] == 7 {
					return tooLarge
				}
			}
			return nil
		}
	})
	cfg := testExportConfig(f.addr)
	cfg.BatchMaxRecords = 10
	e, m := startExporter(t, cfg)
	recs := mkRecords(10, 6)
	for i, r := range recs {
		r.TraceId[15] = byte(i)
	}
	e.Export(recs)
	waitFor(t, "9 records", func() bool { return testutil.ToFloat64(m.RecordsExported) == 9 })
	assert.Equal(t, 1.0, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropTooLarge)))
	assert.Zero(t, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropRejected)))
	got := map[byte]bool{}
	for _, r := range f.records() {
		got[r.TraceId[15]] = true
	}
	for i := range byte(10) {
		assert.Equal(t, i != 7, got[i], "record %d", i)
	}
}

// ResourceExhausted with RetryInfo is throttling: the same batch is retried
// after the server's delay, not split.
func TestExporterRetriesThrottledBatch(t *testing.T) {
	f := newFakeCollector(t)
	left := 2
	f.set(func(f *fakeCollector) {
		f.refuse = func(*collectorv1.ReportRequest) error {
			if left == 0 {
				return nil
			}
			left--
			st, err := status.New(codes.ResourceExhausted, "fake: over budget").
				WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(20 * time.Millisecond)})
			require.NoError(t, err)
			return st.Err()
		}
	})
	e, m := startExporter(t, testExportConfig(f.addr))
	e.Export(mkRecords(10, 8))
	waitFor(t, "10 records", func() bool { return testutil.ToFloat64(m.RecordsExported) == 10 })
	assert.Equal(t, 20.0, testutil.ToFloat64(m.RecordsRetried), "two throttled attempts of the whole batch")
	f.mu.Lock()
	assert.Equal(t, []uint64{1}, f.batches, "not split")
	f.mu.Unlock()
}

func TestClassify(t *testing.T) {
	for code, want := range map[codes.Code]outcome{
		codes.Unavailable: outcomeRetry, codes.DeadlineExceeded: outcomeRetry, codes.Aborted: outcomeRetry,
		codes.Canceled: outcomeRetry, codes.OutOfRange: outcomeRetry, codes.DataLoss: outcomeRetry,
		codes.ResourceExhausted: outcomeSplit,
		codes.InvalidArgument:   outcomeReject, codes.Unimplemented: outcomeReject, codes.Internal: outcomeReject,
		codes.Unauthenticated: outcomeReject, codes.PermissionDenied: outcomeReject, codes.Unknown: outcomeReject,
		codes.NotFound: outcomeReject, codes.FailedPrecondition: outcomeReject, codes.AlreadyExists: outcomeReject,
	} {
		got, _ := classify(status.Error(code, "x"))
		assert.Equal(t, want, got, code.String())
	}
}

func TestExporterQueueDropsOldestWhenFull(t *testing.T) {
	f := newFakeCollector(t)
	block := make(chan struct{})
	f.set(func(f *fakeCollector) { f.block = block })
	cfg := testExportConfig(f.addr)
	cfg.BatchMaxRecords = 1
	cfg.QueueMaxBatches = 2
	cfg.Timeout = 10 * time.Second
	e, m := startExporter(t, cfg)

	recs := mkRecords(6, 4)
	e.Export(recs[:1])
	waitFor(t, "first batch in flight", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.calls == 1 })
	for _, r := range recs[1:] {
		e.Export([]*collectorv1.IOAMRecord{r})
	}
	// In flight: 0. Queue of 2 keeps the newest (4, 5); 1, 2, 3 dropped.
	assert.Equal(t, 3.0, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropQueueFull)))
	assert.Equal(t, 2.0, testutil.ToFloat64(m.QueueBatches))
	close(block)
	waitFor(t, "3 records", func() bool { return len(f.records()) == 3 })
	got := f.records()
	for i, want := range []byte{0, 4, 5} {
		assert.Equal(t, want, got[i].TraceId[15], "record %d", i)
	}
}

func TestExporterSurvivesCollectorRestart(t *testing.T) {
	f := newFakeCollector(t)
	e, m := startExporter(t, testExportConfig(f.addr))
	e.Export(mkRecords(10, 5))
	waitFor(t, "first records", func() bool { return len(f.records()) == 10 })

	f.stop()
	e.Export(mkRecords(30, 6))
	waitFor(t, "failed attempts", func() bool { return testutil.ToFloat64(m.BatchesSent.WithLabelValues("error")) >= 2 })
	f.restart()
	waitFor(t, "all records after restart", func() bool { return testutil.ToFloat64(m.RecordsExported) == 40 })
	assert.Len(t, f.records(), 40)
	assert.Zero(t, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropQueueFull)))
}

func TestExporterCloseFlushesPending(t *testing.T) {
	f := newFakeCollector(t)
	cfg := testExportConfig(f.addr)
	cfg.BatchMaxDelay = time.Hour // only Close seals
	m := NewMetrics()
	e, err := NewGRPCExporter(cfg, "a", slog.New(slog.DiscardHandler), m)
	require.NoError(t, err)
	require.NoError(t, e.Start(t.Context()))
	e.Export(mkRecords(7, 7))
	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "Close is idempotent")
	assert.Len(t, f.records(), 7)
	e.Export(mkRecords(1, 8))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropShutdown)))
}

func TestExporterCloseIsBoundedWhenCollectorIsDown(t *testing.T) {
	f := newFakeCollector(t)
	f.stop()
	cfg := testExportConfig(f.addr)
	cfg.ShutdownTimeout = 200 * time.Millisecond
	m := NewMetrics()
	e, err := NewGRPCExporter(cfg, "a", slog.New(slog.DiscardHandler), m)
	require.NoError(t, err)
	require.NoError(t, e.Start(t.Context()))
	e.Export(mkRecords(25, 9))
	start := time.Now()
	require.NoError(t, e.Close())
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, 25.0, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropShutdown)))
}

func TestExporterCloseWithoutStart(t *testing.T) {
	m := NewMetrics()
	e, err := NewGRPCExporter(testExportConfig("127.0.0.1:1"), "a", slog.New(slog.DiscardHandler), m)
	require.NoError(t, err)
	e.Export(mkRecords(3, 1))
	require.NoError(t, e.Close())
	assert.Equal(t, 3.0, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropShutdown)))
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	for attempt := range 12 {
		d := backoff(100*time.Millisecond, 2*time.Second, attempt)
		base := min(100*time.Millisecond<<attempt, 2*time.Second)
		assert.GreaterOrEqual(t, d, base/2, "attempt %d", attempt)
		assert.Less(t, d, base+base/2, "attempt %d", attempt)
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[backoff(time.Second, time.Second, 0)] = true
	}
	assert.Greater(t, len(seen), 1, "jittered")
}

func TestStdoutExporterWritesJSONLines(t *testing.T) {
	var buf bytes.Buffer
	s := NewStdoutExporter(&buf)
	s.Export(mkRecords(2, 1))
	require.NoError(t, s.Close())
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var v map[string]any
	require.NoError(t, json.Unmarshal(lines[1], &v))
	assert.Equal(t, "AQAAAAAAAAAAAAAAAAAAAQ==", v["trace_id"])
	assert.Equal(t, "1", v["packets"])
}

func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var d dto.Metric
	require.NoError(t, h.Write(&d))
	return d.GetHistogram().GetSampleCount()
}
