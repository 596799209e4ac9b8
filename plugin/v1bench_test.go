package plugin

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev1"
)

// BenchmarkV1Write: spans/s into clt-storage through the storage_v1 writers
// over loopback gRPC, 8 concurrent writers (Jaeger v1's collector writes
// from a pool of workers), 1000 spans per iteration.
func BenchmarkV1Write(b *testing.B) {
	const writers, perIter = 8, 1000
	spans := func(iter int) []*storagev1.Span {
		out := make([]*storagev1.Span, perIter)
		now := time.Now()
		for i := range out {
			s := benchV1Span()
			s.TraceId = make([]byte, 16)
			binary.BigEndian.PutUint64(s.TraceId[8:], uint64(iter*perIter+i+1))
			s.StartTime = timestamppb.New(now)
			out[i] = s
		}
		return out
	}
	// run times b.N batches of perIter spans, built beforehand, and then
	// done (for the stream: until the server has stored everything).
	run := func(b *testing.B, write func(w int, batch []*storagev1.Span), done func()) {
		batches := make([][]*storagev1.Span, b.N)
		for i := range batches {
			batches[i] = spans(i)
		}
		b.ResetTimer()
		for _, all := range batches {
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() { write(w, all[w*perIter/writers:(w+1)*perIter/writers]) })
			}
			wg.Wait()
		}
		done()
		b.StopTimer()
		b.ReportMetric(float64(b.N*perIter)/b.Elapsed().Seconds(), "spans/s")
	}
	b.Run("unary", func(b *testing.B) {
		e := startV1Env(b)
		run(b, func(_ int, batch []*storagev1.Span) {
			for _, s := range batch {
				if _, err := e.writer.WriteSpan(b.Context(), &storagev1.WriteSpanRequest{Span: s}); err != nil {
					b.Error(err)
					return
				}
			}
		}, func() {})
	})
	b.Run("stream", func(b *testing.B) {
		e := startV1Env(b)
		streams := make([]storagev1.StreamingSpanWriterPlugin_WriteSpanStreamClient, writers)
		for i := range streams {
			var err error
			streams[i], err = e.stream.WriteSpanStream(b.Context())
			require.NoError(b, err)
		}
		run(b, func(w int, batch []*storagev1.Span) {
			for _, s := range batch {
				if err := streams[w].Send(&storagev1.WriteSpanRequest{Span: s}); err != nil {
					b.Error(err)
					return
				}
			}
		}, func() {
			for _, st := range streams {
				_, err := st.CloseAndRecv() // the spans are stored when this returns
				require.NoError(b, err)
			}
		})
	})
}
