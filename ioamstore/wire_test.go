package ioamstore

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cross-layer-telemetry/clt/internal/otlpwire"
)

type linkRow struct {
	svc        string
	id, parent string
}

func linksByUnmarshal(t *testing.T, b []byte) []linkRow {
	var td tracepb.TracesData
	require.NoError(t, proto.Unmarshal(b, &td))
	var out []linkRow
	for _, r := range td.ResourceSpans {
		for _, ss := range r.ScopeSpans {
			for _, sp := range ss.Spans {
				out = append(out, linkRow{serviceOf(r.Resource), string(sp.SpanId), string(sp.ParentSpanId)})
			}
		}
	}
	return out
}

func TestWalkSpanLinks(t *testing.T) {
	g := newTracegen(5)
	now := time.Now()
	rss := g.batch(50, now, time.Millisecond, nil)
	rss = append(rss,
		resSpans("other", nil, nil, newSpan(tid(1), 1, "x", now, time.Millisecond, withParent(9))),
		&tracepb.ResourceSpans{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{newSpan(tid(2), 2, "no-resource", now, time.Millisecond)}}}},
		resSpans("", []*commonpb.KeyValue{intKV("service.name", 7)}, nil, newSpan(tid(3), 3, "int-service", now, time.Millisecond)),
	)
	b, err := proto.Marshal(&tracepb.TracesData{ResourceSpans: rss})
	require.NoError(t, err)
	var got []linkRow
	require.NoError(t, walkSpanLinks(b, func(svc string, id, parent []byte) {
		got = append(got, linkRow{svc, string(id), string(parent)})
	}))
	assert.Equal(t, linksByUnmarshal(t, b), got)
	require.Error(t, walkSpanLinks([]byte{0x0a, 0x05, 0x01}, func(string, []byte, []byte) {}))
}

func FuzzWalkSpanLinks(f *testing.F) {
	b, _ := proto.Marshal(&tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{
		resSpans("svc", nil, nil, newSpan(tid(1), 1, "x", time.Unix(1, 0), time.Millisecond, withParent(2)))}})
	f.Add(b)
	// Two Resources (proto merges them: the service comes from the second)
	// and a repeated span id (proto keeps the last); the walk must agree.
	msg := func(num protowire.Number, parts ...[]byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), slices.Concat(parts...))
	}
	svc, err := proto.Marshal(&resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", "s")}})
	require.NoError(f, err)
	span := slices.Concat(msg(otlpwire.FieldSpanSpanID, []byte{0xaa}), msg(otlpwire.FieldSpanSpanID, []byte{0xbb}))
	f.Add(msg(otlpwire.FieldTracesDataResourceSpans,
		msg(otlpwire.FieldResourceSpansResource), msg(otlpwire.FieldResourceSpansResource, svc),
		msg(otlpwire.FieldResourceSpansScopeSpans, msg(otlpwire.FieldScopeSpansSpans, span))))
	// Whenever the full unmarshal accepts the bytes, the walk agrees with it
	// span for span (same service, ids and parents, in order).
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []linkRow
		err := walkSpanLinks(b, func(svc string, id, parent []byte) {
			got = append(got, linkRow{svc, string(id), string(parent)})
		})
		var td tracepb.TracesData
		if proto.Unmarshal(b, &td) != nil {
			return
		}
		require.NoError(t, err, "proto.Unmarshal accepts what the walk rejects")
		assert.Equal(t, linksByUnmarshal(t, b), got)
	})
}
