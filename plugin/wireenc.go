package plugin

import (
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

// What enrichment builds (the attributes and events appended to an
// enriched span, the network spans under their resources) is encoded by
// internal/otlpwire, byte for byte as proto.Marshal would, and by
// proto.Marshal when otlpwire leaves a message to it.

// appendSpan appends the encoding of s to b.
func appendSpan(b []byte, s *tracepb.Span) ([]byte, error) {
	if out, ok := otlpwire.AppendSpan(b, s); ok {
		return out, nil
	}
	return proto.MarshalOptions{}.MarshalAppend(b, s)
}

// appendResourceSpans appends the encoding of rs to b.
func appendResourceSpans(b []byte, rs *tracepb.ResourceSpans) ([]byte, error) {
	if out, ok := otlpwire.AppendResourceSpans(b, rs); ok {
		return out, nil
	}
	return proto.MarshalOptions{}.MarshalAppend(b, rs)
}
