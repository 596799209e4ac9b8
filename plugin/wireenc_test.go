package plugin

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

// requireSameAsProto checks what the read path encodes against
// proto.Marshal (internal/otlpwire's own tests cover the encoder).
func requireSameAsProto(t *testing.T, rs *tracepb.ResourceSpans) {
	t.Helper()
	want, err := proto.Marshal(rs)
	require.NoError(t, err)
	got, err := appendResourceSpans(nil, rs)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "ResourceSpans encoded as\n%x\nproto.Marshal:\n%x", got, want)
	for _, ss := range rs.GetScopeSpans() {
		for _, sp := range ss.GetSpans() {
			want, err := proto.Marshal(sp)
			require.NoError(t, err)
			got, err := appendSpan(nil, sp)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "Span encoded as\n%x\nproto.Marshal:\n%x", got, want)
		}
	}
}

func groupOf(spans ...*tracepb.Span) *tracepb.ResourceSpans {
	return &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr(AttrOTelServiceName, "athos")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "s", Version: "1"}, Spans: spans}},
	}
}

// Enrichment output (span additions, enriched spans, network spans with
// their warnings) encodes as proto.Marshal encodes it.
func TestEnrichmentEncoding(t *testing.T) {
	labels := fakeLabels{1: "athos", 2: "porthos", 3: "aramis"}
	over := rec(3, 0, 1, 2, 3)
	over.Overflow = true
	cases := map[string][]*collectorv1.IOAMRecord{
		"one path":      {rec(3, 0, 1, 2, 3)},
		"windows":       {rec(2, 0, 1, 2), rec(3, 0, 1, 2, 3), rec(3, 1, 1, 2, 3)},
		"path change":   {rec(3, 0, 1, 2, 3), rec(5, 1, 1, 5)},
		"overflow":      {over},
		"unconfirmed":   {rec(2, 0, 1, 2)},
		"no timestamps": {func() *collectorv1.IOAMRecord { r := rec(3, 0, 1, 2, 3); r.Hops[1].Fields = 0; return r }()},
	}
	for name, recs := range cases {
		t.Run(name, func(t *testing.T) {
			sp := spanOver(time.Second)
			a := analyzeSpan(sp, recs)
			require.NotNil(t, a)
			for _, rs := range assignIDs(a.networkSpans(sp, labels), map[[8]byte]struct{}{}) {
				requireSameAsProto(t, rs)
			}
			add := &tracepb.Span{StartTimeUnixNano: sp.StartTimeUnixNano}
			a.apply(add, labels)
			add.StartTimeUnixNano = 0
			requireSameAsProto(t, groupOf(add))
			a.apply(sp, labels)
			requireSameAsProto(t, groupOf(sp))
		})
	}
}

// A message the encoder leaves to proto.Marshal still gets proto.Marshal's
// answer: its bytes, or its error.
func TestEnrichmentEncodingFallback(t *testing.T) {
	kvlist := &tracepb.Span{Attributes: []*commonpb.KeyValue{{Key: "l", Value: &commonpb.AnyValue{
		Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{intAttr("a", 1)}}}}}}}
	requireSameAsProto(t, groupOf(kvlist))
	_, err := appendSpan(nil, &tracepb.Span{Name: "\xff"})
	require.Error(t, err)
	_, err = appendResourceSpans(nil, groupOf(&tracepb.Span{Name: "\xff"}))
	require.Error(t, err)
}
