package plugin

import (
	"fmt"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// maxChunkBytes bounds the encoded size of one streamed TracesData message.
// gRPC clients refuse messages over 4 MiB by default and Jaeger v2.13 (and
// v1) cannot raise that limit, so a trace streamed in larger chunks was
// unreadable, and so was every search that found it. 3 MiB leaves room for
// framing (parts are sized after enrichment, network spans included).
const maxChunkBytes = 3 << 20

// targetChunkBytes is where a streamed message is cut once it holds a span
// (a larger span still goes alone, up to maxChunkBytes). Jaeger's client
// gathers each message into a buffer of grpc's default pool, which has no
// tier between 32 KiB and 1 MiB and zeroes the whole buffer it hands out:
// a 33 KiB message costs it a 1 MiB clear, two of 17 KiB two 32 KiB ones
// (docs/benchmarks.md).
const targetChunkBytes = 32 << 10

// Truncation of a single span that does not fit maxChunkBytes on its own.
const (
	// truncValueBytes is what a long string attribute value is cut to.
	truncValueBytes = 1024
	// AttrTruncated marks a span clt-storage shortened to make it readable.
	AttrTruncated = "clt.truncated"
	// WarnTruncated starts the warning of a truncated span.
	WarnTruncated = "clt-storage: span truncated to fit a gRPC message: "
)

// fitSpan returns encoded span sp truncated by at least over bytes (see
// [truncateSpan]): it does not fit maxChunkBytes on its own.
func fitSpan(sp []byte, over int) ([]byte, error) {
	span := &tracepb.Span{}
	if err := proto.Unmarshal(sp, span); err != nil {
		return nil, fmt.Errorf("%w: span: %w", errWire, err)
	}
	truncateSpan(span, over)
	out, err := proto.Marshal(span)
	if err != nil {
		return nil, fmt.Errorf("marshal span: %w", err)
	}
	return out, nil
}

// truncateSpan makes sp at least over bytes smaller, in steps that keep the
// most useful parts: first its events (newest first), then long string
// attribute values (cut to truncValueBytes), then its links. What was cut is
// said in a warning and the clt.truncated tag, never silently.
func truncateSpan(sp *tracepb.Span, over int) {
	before := proto.Size(sp)
	target := before - over
	var droppedEvents, cutValues, droppedLinks int
	for len(sp.Events) > 0 && proto.Size(sp) > target {
		sp.Events = sp.Events[:len(sp.Events)-1]
		sp.DroppedEventsCount++
		droppedEvents++
	}
	if proto.Size(sp) > target {
		for _, kv := range sp.Attributes {
			if cutValue(kv.GetValue()) {
				cutValues++
			}
		}
	}
	if proto.Size(sp) > target {
		droppedLinks = len(sp.Links)
		sp.DroppedLinksCount += uint32(droppedLinks)
		sp.Links = nil
	}
	sp.Attributes = append(sp.Attributes, boolAttr(AttrTruncated, true))
	addWarnings(sp, []string{fmt.Sprintf("%s%d of %d bytes over the %d-byte limit (%d event(s) dropped, %d value(s) cut to %d bytes, %d link(s) dropped)",
		WarnTruncated, over, before, maxChunkBytes, droppedEvents, cutValues, truncValueBytes, droppedLinks)})
}

// cutValue shortens a long string value (also inside arrays and maps) at a
// UTF-8 boundary; it reports whether it changed anything.
func cutValue(v *commonpb.AnyValue) bool {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		if len(x.StringValue) <= truncValueBytes {
			return false
		}
		s := x.StringValue[:truncValueBytes]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		x.StringValue = s + "…"
		return true
	case *commonpb.AnyValue_BytesValue:
		if len(x.BytesValue) <= truncValueBytes {
			return false
		}
		x.BytesValue = x.BytesValue[:truncValueBytes]
		return true
	case *commonpb.AnyValue_ArrayValue:
		changed := false
		for _, e := range x.ArrayValue.GetValues() {
			changed = cutValue(e) || changed
		}
		return changed
	case *commonpb.AnyValue_KvlistValue:
		changed := false
		for _, kv := range x.KvlistValue.GetValues() {
			changed = cutValue(kv.GetValue()) || changed
		}
		return changed
	}
	return false
}
