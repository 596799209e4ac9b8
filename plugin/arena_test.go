package plugin

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	storagev2 "github.com/cross-layer-telemetry/clt/api/storagev2"
)

// Slices handed out by one arena never overlap, and appending past one's
// capacity moves it instead of writing into the next.
func TestByteArenaDisjoint(t *testing.T) {
	var a byteArena
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 3 {
		var got [][]byte
		for i := range 400 {
			n := rng.IntN(9000)
			if i%50 == 0 {
				n = arenaBlock + 1 // from the heap
			}
			b := a.alloc(n)
			require.Equal(t, 0, len(b))
			require.Equal(t, n, cap(b))
			b = append(b, bytes.Repeat([]byte{byte(i)}, n)...)
			got = append(got, b)
			if i%7 == 0 {
				_ = append(b, 0xff) // past the capacity: a copy
			}
		}
		for i, b := range got {
			require.Equal(t, bytes.Repeat([]byte{byte(i)}, len(b)), b, "round %d slice %d", round, i)
		}
		a.reset()
		require.LessOrEqual(t, len(a.blocks), maxArenaBlocks)
	}
}

// Values from a slab keep their address while more are handed out, and a
// reset zeroes them.
func TestSlabStableAndReset(t *testing.T) {
	var s slab[strAlloc]
	var ptrs []*strAlloc
	for i := range 5 * slabBlock {
		x := s.next()
		x.w.StringValue = string(rune('a' + i%26))
		ptrs = append(ptrs, x)
	}
	for i, x := range ptrs {
		require.Equal(t, string(rune('a'+i%26)), x.w.StringValue)
	}
	s.reset()
	for _, x := range ptrs {
		require.Empty(t, x.w.StringValue)
	}
	assert.Same(t, ptrs[0], s.next(), "a reset slab starts over in its first block")
	for range maxSlabBlocks * slabBlock * 2 {
		s.next()
	}
	s.reset()
	assert.Len(t, s.blocks, maxSlabBlocks)
}

// Reads that reuse one another's arenas (sequentially and concurrently)
// return the same bytes for the same trace as the first read of it.
func TestReadArenaReuse(t *testing.T) {
	e := startEnv(t, nil)
	ids := loadEnrichedTraces(t, e, 6, true)
	read := func(id []byte) []byte {
		st, err := e.reader.GetTraces(t.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id}}})
		require.NoError(t, err)
		var out []byte
		for _, td := range collect(t, st.Recv, 1000) {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(td)
			require.NoError(t, err)
			out = append(out, b...)
		}
		return out
	}
	want := make([][]byte, len(ids))
	for i, id := range ids {
		want[i] = read(id)
	}
	st, err := e.reader.GetTraces(t.Context(), &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: ids[0]}}})
	require.NoError(t, err)
	require.Len(t, spansOf(collect(t, st.Recv, 1000)), 120, "100 spans and 2 network spans for each of 10 enriched ones")
	for i := range want[1:] {
		require.NotEqual(t, want[0], want[i+1])
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range 15 {
				i := (g + k) % len(ids)
				assert.Equal(t, want[i], read(ids[i]), "trace %d, read %d of goroutine %d", i, k, g)
			}
		})
	}
	wg.Wait()
}
