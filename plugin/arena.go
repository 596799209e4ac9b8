package plugin

import (
	"sync"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// readArena holds what one trace read builds only to encode it: the
// attribute and event messages of enrichment and the bytes of the spans
// queued for the next chunk. A read takes one from arenas and gives it back
// when its last chunk is sent; nothing it handed out may be used after that
// (gRPC has copied every message sent by then). Reusing it across reads
// takes those allocations, most of what the server allocates per read, off
// the garbage collector (docs/benchmarks.md). A nil *readArena allocates
// from the heap.
type readArena struct {
	ints   slab[intAlloc]
	strs   slab[strAlloc]
	bools  slab[boolAlloc]
	events slab[tracepb.Span_Event]
	bytes  byteArena
	// The chunker's sets, cleared and reused (a cleared map keeps its
	// buckets); ones grown past maxPooledSet entries are dropped.
	seen    map[dupKey]struct{}
	realIDs map[[8]byte]struct{}
}

const maxPooledSet = 1 << 14

var arenas = sync.Pool{New: func() any { return new(readArena) }}

func getArena() *readArena { return arenas.Get().(*readArena) }

// release clears what a was used for and returns it to the pool.
func (a *readArena) release() {
	a.ints.reset()
	a.strs.reset()
	a.bools.reset()
	a.events.reset()
	a.bytes.reset()
	a.seen = resetSet(a.seen)
	a.realIDs = resetSet(a.realIDs)
	arenas.Put(a)
}

func resetSet[K comparable](m map[K]struct{}) map[K]struct{} {
	if len(m) > maxPooledSet {
		return nil
	}
	clear(m)
	return m
}

// sets returns the arena's empty seen and realIDs sets.
func (a *readArena) sets() (map[dupKey]struct{}, map[[8]byte]struct{}) {
	if a.seen == nil {
		a.seen = map[dupKey]struct{}{}
	}
	if a.realIDs == nil {
		a.realIDs = map[[8]byte]struct{}{}
	}
	return a.seen, a.realIDs
}

// The attribute constructors of enrich.go, from the arena's slabs.
func (a *readArena) intAttr(k string, v int64) *commonpb.KeyValue {
	if a == nil {
		return intAttr(k, v)
	}
	return a.ints.next().set(k, v)
}

func (a *readArena) strAttr(k, v string) *commonpb.KeyValue {
	if a == nil {
		return strAttr(k, v)
	}
	return a.strs.next().set(k, v)
}

func (a *readArena) boolAttr(k string, v bool) *commonpb.KeyValue {
	if a == nil {
		return boolAttr(k, v)
	}
	return a.bools.next().set(k, v)
}

func (a *readArena) event(ts uint64, name string, attrs []*commonpb.KeyValue) *tracepb.Span_Event {
	if a == nil {
		return &tracepb.Span_Event{TimeUnixNano: ts, Name: name, Attributes: attrs}
	}
	e := a.events.next()
	e.TimeUnixNano, e.Name, e.Attributes = ts, name, attrs
	return e
}

// alloc returns an empty slice of capacity n.
func (a *readArena) alloc(n int) []byte {
	if a == nil {
		return make([]byte, 0, n)
	}
	return a.bytes.alloc(n)
}

// slabBlock is how many values one slab block holds; maxSlabBlocks how
// many blocks a pooled slab keeps (a huge read's are left to the GC).
const (
	slabBlock     = 64
	maxSlabBlocks = 64
)

// slab hands out zeroed values from fixed blocks, which never move.
type slab[T any] struct {
	blocks [][]T
	n      int // values handed out
}

func (s *slab[T]) next() *T {
	b, i := s.n/slabBlock, s.n%slabBlock
	if b == len(s.blocks) {
		s.blocks = append(s.blocks, make([]T, slabBlock))
	}
	s.n++
	return &s.blocks[b][i]
}

// reset zeroes what was handed out, so that the slab keeps no reference
// and reused messages carry no state (protobuf's size cache) over.
func (s *slab[T]) reset() {
	used := (s.n + slabBlock - 1) / slabBlock
	for _, b := range s.blocks[:used] {
		clear(b)
	}
	if len(s.blocks) > maxSlabBlocks {
		clear(s.blocks[maxSlabBlocks:])
		s.blocks = s.blocks[:maxSlabBlocks]
	}
	s.n = 0
}

// arenaBlock is the size of one byte block: a stored chunk of a hundred
// spans fits; larger requests (chunks hold up to 512 spans) come from the
// heap. maxArenaBlocks is how many blocks a pooled arena keeps.
const (
	arenaBlock     = 128 << 10
	maxArenaBlocks = 16
)

// byteArena hands out byte slices from large blocks.
type byteArena struct {
	blocks [][]byte
	cur    int
}

func (b *byteArena) alloc(n int) []byte {
	if n > arenaBlock {
		return make([]byte, 0, n)
	}
	for ; b.cur < len(b.blocks); b.cur++ {
		blk := b.blocks[b.cur]
		if off := len(blk); cap(blk)-off >= n {
			b.blocks[b.cur] = blk[:off+n]
			// The capacity ends at n: an append past it cannot reach
			// the next slice handed out.
			return blk[off:off:(off + n)]
		}
	}
	blk := make([]byte, n, arenaBlock)
	b.blocks = append(b.blocks, blk)
	return blk[0:0:n]
}

func (b *byteArena) reset() {
	for i := range b.blocks {
		b.blocks[i] = b.blocks[i][:0]
	}
	if len(b.blocks) > maxArenaBlocks {
		clear(b.blocks[maxArenaBlocks:])
		b.blocks = b.blocks[:maxArenaBlocks]
	}
	b.cur = 0
}
