package ioamstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// queryFixture writes a small, varied data set and returns its base time.
//
//	trace 1 (svc-a): root "GET /" 10ms, attrs http.status=200 (int), ok=true, load=72.5,
//	                 event attr ev.k=ev.v; resource host.name=h1; scope attr scope.k=scope.v
//	trace 2 (svc-a): "GET /" 1ms status ERROR, "db" 100ms; starts 1 min after trace 1
//	trace 3 (svc-b): "work" 5ms, attr error=true (no ERROR status); starts 2 min after
//	trace 4 (svc-a): "GET /" 2ms; starts 3 min after
func queryFixture(t *testing.T, s *Store) time.Time {
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	write(t, s,
		resSpans("svc-a", []*commonpb.KeyValue{strKV("host.name", "h1")}, []*commonpb.KeyValue{strKV("scope.k", "scope.v")},
			newSpan(tid(1), 1, "GET /", base, 10*time.Millisecond,
				withAttrs(intKV("http.status", 200), boolKV("ok", true), dblKV("load", 72.5)),
				withEvent("e", strKV("ev.k", "ev.v")))),
	)
	write(t, s,
		resSpans("svc-a", []*commonpb.KeyValue{strKV("host.name", "h2")}, nil,
			newSpan(tid(2), 1, "GET /", base.Add(time.Minute), time.Millisecond, withStatus(tracepb.Status_STATUS_CODE_ERROR)),
			newSpan(tid(2), 2, "db", base.Add(time.Minute+time.Millisecond), 100*time.Millisecond, withParent(1))),
		resSpans("svc-b", nil, nil,
			newSpan(tid(3), 1, "work", base.Add(2*time.Minute), 5*time.Millisecond, withAttrs(boolKV("error", true)))),
	)
	write(t, s, resSpans("svc-a", nil, nil, newSpan(tid(4), 1, "GET /", base.Add(3*time.Minute), 2*time.Millisecond)))
	return base
}

func TestFindTraceIDs(t *testing.T) {
	s := openTest(t, true)
	base := queryFixture(t, s)
	at := func(d time.Duration) time.Time { return base.Add(d) }
	attrs := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		q    Query
		want [][16]byte
	}{
		{"service newest first", Query{Service: "svc-a"}, [][16]byte{tid(4), tid(2), tid(1)}},
		{"other service", Query{Service: "svc-b"}, [][16]byte{tid(3)}},
		{"bounds beyond 1678-2262 clamp", Query{Service: "svc-b", StartMin: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			StartMax: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}, [][16]byte{tid(3)}},
		{"max before 1970 matches nothing", Query{Service: "svc-b", StartMax: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, [][16]byte{}},
		{"unknown service", Query{Service: "svc-x"}, [][16]byte{}},
		{"operation", Query{Service: "svc-a", Operation: "db"}, [][16]byte{tid(2)}},
		{"operation of another service", Query{Service: "svc-a", Operation: "work"}, [][16]byte{}},
		{"search depth", Query{Service: "svc-a", SearchDepth: 2}, [][16]byte{tid(4), tid(2)}},
		{"start min", Query{Service: "svc-a", StartMin: at(time.Minute)}, [][16]byte{tid(4), tid(2)}},
		{"start max", Query{Service: "svc-a", StartMax: at(time.Minute)}, [][16]byte{tid(2), tid(1)}},
		{"start window", Query{Service: "svc-a", StartMin: at(30 * time.Second), StartMax: at(90 * time.Second)}, [][16]byte{tid(2)}},
		{"start bounds inclusive", Query{Service: "svc-a", StartMin: at(0), StartMax: at(0)}, [][16]byte{tid(1)}},
		{"start window between spans", Query{Service: "svc-a", StartMin: at(time.Minute + time.Microsecond), StartMax: at(time.Minute + time.Millisecond - 1)}, [][16]byte{}},
		{"duration min", Query{Service: "svc-a", DurationMin: 5 * time.Millisecond}, [][16]byte{tid(2), tid(1)}},
		{"duration max", Query{Service: "svc-a", DurationMax: 2 * time.Millisecond}, [][16]byte{tid(4), tid(2)}},
		{"duration window", Query{Service: "svc-a", DurationMin: 2 * time.Millisecond, DurationMax: 10 * time.Millisecond}, [][16]byte{tid(4), tid(1)}},
		{"one span must satisfy all", Query{Service: "svc-a", Operation: "GET /", DurationMin: 50 * time.Millisecond}, [][16]byte{}},
		{"span attribute int as string", Query{Service: "svc-a", Attributes: attrs("http.status", "200")}, [][16]byte{tid(1)}},
		{"int mismatch", Query{Service: "svc-a", Attributes: attrs("http.status", "201")}, [][16]byte{}},
		{"bool as string", Query{Service: "svc-a", Attributes: attrs("ok", "true")}, [][16]byte{tid(1)}},
		{"double as string", Query{Service: "svc-a", Attributes: attrs("load", "72.5")}, [][16]byte{tid(1)}},
		{"event attribute", Query{Service: "svc-a", Attributes: attrs("ev.k", "ev.v")}, [][16]byte{tid(1)}},
		{"scope attribute", Query{Service: "svc-a", Attributes: attrs("scope.k", "scope.v")}, [][16]byte{tid(1)}},
		{"resource attribute", Query{Service: "svc-a", Attributes: attrs("host.name", "h2")}, [][16]byte{tid(2)}},
		{"several attributes on one span", Query{Service: "svc-a", Attributes: attrs("host.name", "h1", "ok", "true", "ev.k", "ev.v")}, [][16]byte{tid(1)}},
		{"attributes on different traces", Query{Service: "svc-a", Attributes: attrs("host.name", "h2", "ok", "true")}, [][16]byte{}},
		{"resource attr + operation of other span", Query{Service: "svc-a", Operation: "db", Attributes: attrs("host.name", "h2")}, [][16]byte{tid(2)}},
		{"error=true by status", Query{Service: "svc-a", Attributes: attrs("error", "true")}, [][16]byte{tid(2)}},
		{"error=true and operation", Query{Service: "svc-a", Operation: "db", Attributes: attrs("error", "true")}, [][16]byte{}},
		{"error=true by attribute", Query{Service: "svc-b", Attributes: attrs("error", "true")}, [][16]byte{tid(3)}},
		{"error=false", Query{Service: "svc-a", Attributes: attrs("error", "false")}, [][16]byte{tid(4), tid(2), tid(1)}},
		{"error=false with operation", Query{Service: "svc-a", Operation: "GET /", Attributes: attrs("error", "false")}, [][16]byte{tid(4), tid(1)}},
		{"service name as attribute", Query{Service: "svc-b", Attributes: attrs("service.name", "svc-b")}, [][16]byte{tid(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := find(t, s, tt.q)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFindTraceIDsStartEnd(t *testing.T) {
	s := openTest(t, true)
	base := queryFixture(t, s)
	res, err := s.FindTraceIDs(context.Background(), Query{Service: "svc-a", Operation: "db", SearchDepth: 1})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, base.Add(time.Minute).UnixNano(), res[0].Start.UnixNano())
	assert.Equal(t, base.Add(time.Minute+101*time.Millisecond).UnixNano(), res[0].End.UnixNano())
}

func TestFindTraceIDsInvalid(t *testing.T) {
	s := openTest(t, true)
	now := time.Now()
	for name, q := range map[string]Query{
		"depth 0":        {Service: "a"},
		"negative depth": {Service: "a", SearchDepth: -1},
		"no service":     {SearchDepth: 1},
		"inverted start": {Service: "a", SearchDepth: 1, StartMin: now, StartMax: now.Add(-time.Second)},
		"inverted dur":   {Service: "a", SearchDepth: 1, DurationMin: time.Second, DurationMax: time.Millisecond},
		"negative dur":   {Service: "a", SearchDepth: 1, DurationMin: -time.Second},
	} {
		_, err := s.FindTraceIDs(context.Background(), q)
		require.ErrorIs(t, err, ErrInvalidQuery, name)
	}
}

// A trace whose spans arrived in several batches is found once, by any batch.
func TestFindAcrossBatches(t *testing.T) {
	s := openTest(t, true)
	now := time.Now()
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 2, "child", now.Add(time.Millisecond), time.Millisecond, withParent(1))))
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(2), 1, "other", now.Add(2*time.Millisecond), time.Millisecond)))
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 1, "root", now, 5*time.Millisecond, withAttrs(strKV("k", "v")))))
	assert.Equal(t, [][16]byte{tid(2), tid(1)}, find(t, s, Query{Service: "svc"}))
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Service: "svc", Attributes: map[string]string{"k": "v"}}))
	res, err := s.FindTraceIDs(context.Background(), Query{Service: "svc", Operation: "child", SearchDepth: 5})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, now.UnixNano(), res[0].Start.UnixNano(), "start covers every batch of the trace")
	assert.Equal(t, now.Add(5*time.Millisecond).UnixNano(), res[0].End.UnixNano())
}

// Spans of one trace spread over more than indexSpread: a narrow window at
// the early end still finds it.
func TestFindSpreadTrace(t *testing.T) {
	s := openTest(t, true)
	base := time.Now().Add(-time.Hour)
	write(t, s, resSpans("svc", nil, nil,
		newSpan(tid(1), 1, "early", base, time.Millisecond),
		newSpan(tid(1), 2, "late", base.Add(10*time.Minute), time.Millisecond)))
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Service: "svc", StartMin: base.Add(-time.Second), StartMax: base.Add(time.Second)}))
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Service: "svc", Operation: "late", StartMax: base.Add(11 * time.Minute)}))
	assert.Empty(t, find(t, s, Query{Service: "svc", Operation: "late", StartMax: base.Add(time.Minute)}))
}

func TestFindIOAM(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, true)
	now := time.Now()
	// records BEFORE spans for trace 1
	_, _, err := s.WriteRecords(ctx, []Record{{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{10, 20}, NamespaceID: 123, Received: now, Data: []byte("a")}})
	require.NoError(t, err)
	write(t, s, resSpans("svc", nil, nil,
		newSpan(tid(1), 1, "GET", now, time.Millisecond),
		newSpan(tid(1), 2, "db", now, time.Millisecond)))
	// spans BEFORE records for trace 2
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(2), 1, "GET", now.Add(time.Second), time.Millisecond)))
	_, _, err = s.WriteRecords(ctx, []Record{{TraceID: tid(2), SpanID: sid(1), NodeIDs: []uint64{20, 30}, NamespaceID: 7, Received: now.Add(time.Second), Data: []byte("b")}})
	require.NoError(t, err)
	// a record for a span that does not exist in trace 3
	write(t, s, resSpans("other", nil, nil, newSpan(tid(3), 1, "x", now, time.Millisecond)))
	_, _, err = s.WriteRecords(ctx, []Record{{TraceID: tid(3), SpanID: sid(99), NodeIDs: []uint64{10}, Data: []byte("c")}})
	require.NoError(t, err)

	a := func(kv ...string) map[string]string { return map[string]string{kv[0]: kv[1]} }
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Service: "svc", Attributes: a("ioam.node_id", "10")}))
	assert.Equal(t, [][16]byte{tid(2), tid(1)}, find(t, s, Query{Service: "svc", Attributes: a("ioam.node_id", "20")}))
	assert.Equal(t, [][16]byte{tid(2)}, find(t, s, Query{Service: "svc", Attributes: a("ioam.node_id", "30")}))
	assert.Equal(t, [][16]byte{tid(2), tid(1)}, find(t, s, Query{Attributes: a("ioam.node_id", "20")}), "no service needed")
	assert.Empty(t, find(t, s, Query{Service: "svc", Attributes: a("ioam.node_id", "40")}))
	assert.Empty(t, find(t, s, Query{Service: "svc", Attributes: a("ioam.node_id", "x")}))
	assert.Empty(t, find(t, s, Query{Attributes: a("ioam.node_id", "10"), Service: "other"}), "record of another span")
	assert.Empty(t, find(t, s, Query{Service: "svc", Operation: "db", Attributes: a("ioam.node_id", "10")}), "record is on span 1 only")
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Service: "svc", Attributes: a("ioam.namespace_id", "123")}))
	assert.Equal(t, [][16]byte{tid(2)}, find(t, s, Query{Attributes: map[string]string{"ioam.namespace_id": "7", "ioam.node_id": "20"}}))
	assert.Empty(t, find(t, s, Query{Attributes: map[string]string{"ioam.namespace_id": "123", "ioam.node_id": "30"}}))
	assert.Empty(t, find(t, s, Query{Service: "svc", Attributes: a("ioam.namespace_id", "70000")}))
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Service: "svc", Attributes: a("ioam.node_id", "0xa")}), "hex finds short ids too")
}

// Wide node ids (56 bits) are indexed in full and found by the value as shown
// (0x hex) or in decimal; a 32-bit value and a wide one never mix.
func TestFindWideNodeID(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, true)
	now := time.Now()
	const wide = 0x00a1b2c3d4e5f6
	write(t, s, resSpans("svc", nil, nil, newSpan(tid(1), 1, "GET", now, time.Millisecond)),
		resSpans("svc", nil, nil, newSpan(tid(2), 1, "GET", now, time.Millisecond)))
	_, _, err := s.WriteRecords(ctx, []Record{
		{TraceID: tid(1), SpanID: sid(1), NodeIDs: []uint64{3, wide}, Received: now, Data: []byte("a")},
		{TraceID: tid(2), SpanID: sid(1), NodeIDs: []uint64{wide & 0xffffffff}, Received: now, Data: []byte("b")},
	})
	require.NoError(t, err)
	a := func(v string) map[string]string { return map[string]string{"ioam.node_id": v} }
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Attributes: a("0xa1b2c3d4e5f6")}), "as shown")
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Attributes: a("0x00A1B2C3D4E5F6")}), "leading zeros, upper case")
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Service: "svc", Attributes: a("177789161760246")}), "decimal")
	assert.Equal(t, [][16]byte{tid(2)}, find(t, s, Query{Attributes: a("0xc3d4e5f6")}), "the low 32 bits are another id")
	assert.Equal(t, [][16]byte{tid(1)}, find(t, s, Query{Attributes: a("3")}))
	assert.Empty(t, find(t, s, Query{Attributes: a("0x100000000000000")}), "above 56 bits")
}

func TestGetDependencies(t *testing.T) {
	s := openTest(t, true)
	now := time.Now()
	write(t, s,
		resSpans("front", nil, nil, newSpan(tid(1), 1, "GET", now, time.Millisecond)),
		resSpans("back", nil, nil,
			newSpan(tid(1), 2, "q", now, time.Millisecond, withParent(1)),
			newSpan(tid(1), 3, "q2", now, time.Millisecond, withParent(2))), // same service: not counted
	)
	write(t, s, resSpans("back", nil, nil, newSpan(tid(2), 2, "q", now, time.Millisecond, withParent(1))))
	write(t, s, resSpans("front", nil, nil, newSpan(tid(2), 1, "GET", now, time.Millisecond))) // parent arrives later
	write(t, s, resSpans("db", nil, nil, newSpan(tid(3), 2, "q", now.Add(-time.Hour), time.Millisecond, withParent(1))),
		resSpans("back", nil, nil, newSpan(tid(3), 1, "x", now.Add(-time.Hour), time.Millisecond)))
	deps, err := s.GetDependencies(context.Background(), now.Add(-time.Minute), now.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []Dependency{{Parent: "front", Child: "back", CallCount: 2}}, deps)
	deps, err = s.GetDependencies(context.Background(), time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []Dependency{{Parent: "back", Child: "db", CallCount: 1}, {Parent: "front", Child: "back", CallCount: 2}}, deps)
}

// A span stored twice (a client re-sent a batch with more spans: issue 12's
// re-batched retry) is one call in the dependencies, as the read serves it
// once.
func TestGetDependenciesStoredTwice(t *testing.T) {
	s := openTest(t, true)
	now := time.Now()
	front := resSpans("front", nil, nil, newSpan(tid(1), 1, "GET", now, time.Millisecond))
	back := resSpans("back", nil, nil, newSpan(tid(1), 2, "q", now, time.Millisecond, withParent(1)))
	write(t, s, front, back)
	write(t, s, front, back, resSpans("db", nil, nil, newSpan(tid(1), 3, "q", now, time.Millisecond, withParent(2))))
	deps, err := s.GetDependencies(context.Background(), time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []Dependency{{Parent: "back", Child: "db", CallCount: 1}, {Parent: "front", Child: "back", CallCount: 1}}, deps)
}

// The trace budget is shared between services: a busy service does not hide
// the others' edges.
func TestGetDependenciesBudgetPerService(t *testing.T) {
	s := openTest(t, true, func(c *Config) { c.DependencyMaxTraces = 3 })
	now := time.Now()
	for i := range 10 {
		write(t, s, resSpans("a-busy", nil, nil, newSpan(tid(uint64(100+i)), 1, "op", now, time.Millisecond)))
	}
	write(t, s, resSpans("x", nil, nil, newSpan(tid(1), 1, "op", now.Add(-time.Second), time.Millisecond)),
		resSpans("y", nil, nil, newSpan(tid(1), 2, "op", now.Add(-time.Second), time.Millisecond, withParent(1))))
	deps, err := s.GetDependencies(context.Background(), time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []Dependency{{Parent: "x", Child: "y", CallCount: 1}}, deps)
}
