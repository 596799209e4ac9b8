package ioamstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
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
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = walkSpanLinks(b, func(string, []byte, []byte) {})
	})
}
