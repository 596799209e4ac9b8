//go:build e2e

package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

// BenchmarkUpstreamFrontIngest is the ingest goal of upstream mode as the
// issue states it: spans sent to a Jaeger v2 front (OTLP receiver, batch
// processor, jaeger_storage_exporter over the grpc backend) that writes
// either to a remote_storage tier on badger directly or through a
// clt-storage process in upstream mode in front of the same tier. b.N
// batches of 100 spans go to each front per round from frontClients
// concurrent clients, rounds interleaved (order swapped each round). A
// round ends when its spans are stored: the front's batch processor
// exports in order and its exporter has no queue, so once a sentinel trace
// sent after every acknowledged batch is readable in the tier, all of them
// are (then checked, untimed: every trace of the round is in the tier with
// its 100 spans). Figures: docs/benchmarks.md.
func BenchmarkUpstreamFrontIngest(b *testing.B) {
	bin := jaegerBin(b)
	storageBin := buildStorage(b)
	dir := b.TempDir()
	remote := startTier(b, bin, dir, fmt.Sprintf(upstreamBadger, filepath.Join(dir, "tier")))
	layer := newReplicaProc(b, storageBin, dir, remote)
	layer.start()

	dial := func(addr string) *grpc.ClientConn { return dialLoopback(b, addr) }
	// front starts a Jaeger v2 front writing to storage and returns an OTLP
	// client for its receiver.
	front := func(name, storage string) coltracepb.TraceServiceClient {
		conf, health, otlp := filepath.Join(dir, name+".yaml"), freeAddr(b), freeAddr(b)
		require.NoError(b, os.WriteFile(conf, fmt.Appendf(nil, jaegerConfig, health, freeAddr(b), freeAddr(b), storage, otlp), 0o644))
		startJaeger(b, bin, conf, health, filepath.Join(dir, name+".log"))
		return coltracepb.NewTraceServiceClient(dial(otlp))
	}
	fronts := []coltracepb.TraceServiceClient{front("front-direct", remote), front("front-layer", layer.storage)}
	tier := storagev2.NewTraceReaderClient(dial(remote))
	ctx := context.Background()
	start := time.Now().Add(-time.Minute)

	spansIn := func(id []byte) int { return spansOfTrace(b, ctx, tier, id) }
	var round uint32
	traceID := func(which int, r uint32, i int) []byte {
		id := make([]byte, 16)
		id[0], id[1] = 0xf1, byte(which)
		binary.BigEndian.PutUint32(id[4:], r)
		binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
		return id
	}
	// ingest sends n batches to front which and returns how long until
	// they were stored.
	ingest := func(b *testing.B, which, n int) time.Duration {
		round++
		r := round
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, frontClients)
		for c := range frontClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := c; i < n; i += frontClients {
					if err := exportTrace(ctx, fronts[which], traceID(which, r, i), 100, start); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		sentinel := traceID(which, r, n)
		require.NoError(b, exportTrace(ctx, fronts[which], sentinel, 1, start))
		for deadline := time.Now().Add(2 * time.Minute); spansIn(sentinel) == 0; {
			if time.Now().After(deadline) {
				b.Fatal("sentinel trace not stored after 2 minutes")
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(t0)
		b.StopTimer()
		for i := range n {
			if got := spansIn(traceID(which, r, i)); got != 100 {
				b.Fatalf("round %d, front %d: trace %d has %d spans in the tier, want 100", r, which, i, got)
			}
		}
		b.StartTimer()
		return took
	}

	b.Run("interleaved", func(b *testing.B) {
		var took [2]time.Duration
		for k := range frontRounds {
			for j := range 2 {
				which := (j + k) % 2
				d := ingest(b, which, b.N)
				took[which] += d
				if b.N > 1 {
					b.Logf("round %d %s: %.0f spans/s", k, []string{"direct", "layer"}[which], float64(b.N*100)/d.Seconds())
				}
			}
		}
		rate := func(d time.Duration) float64 { return float64(frontRounds*b.N*100) / d.Seconds() }
		b.ReportMetric(rate(took[0]), "direct-spans/s")
		b.ReportMetric(rate(took[1]), "layer-spans/s")
		b.ReportMetric(rate(took[1])/rate(took[0]), "layer/direct")
	})
}

// frontClients and frontRounds shape BenchmarkUpstreamFrontIngest.
const (
	frontClients = 4
	frontRounds  = 3
)
