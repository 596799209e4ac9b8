package jaegerui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadTrace(t *testing.T) (*Trace, []byte) {
	t.Helper()
	b, err := os.ReadFile("testdata/trace.json")
	require.NoError(t, err)
	r, err := Decode(b)
	require.NoError(t, err)
	require.Len(t, r.Data, 1)
	return &r.Data[0], b
}

func TestDecodeErrors(t *testing.T) {
	_, err := Decode([]byte(`{"data":null,"errors":[{"code":400,"msg":"parameter 'service' is required"}]}`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "parameter 'service' is required")

	_, err = Decode([]byte(`{"data":[`))
	require.Error(t, err)
}

func TestHopsOrderedAndTyped(t *testing.T) {
	tr, _ := loadTrace(t)
	s, ok := tr.Span("00000000000000a2")
	require.True(t, ok)
	hops := s.Hops()
	require.Len(t, hops, 2, "the non-hop log must be skipped")

	assert.Equal(t, int64(0), hops[0].Index)
	assert.Equal(t, int64(2), hops[0].NodeID)
	assert.Equal(t, int64(21), hops[0].IngressIf)
	assert.Equal(t, int64(22), hops[0].EgressIf)
	assert.Equal(t, int64(3), hops[1].NodeID)
	assert.Equal(t, int64(65535), hops[1].EgressIf)
	assert.Equal(t, 20245*time.Microsecond, hops[1].Time.Sub(hops[0].Time))
	hl, ok := hops[1].Field("ioam.hop_limit")
	require.True(t, ok)
	assert.Equal(t, int64(62), hl)

	n, ok := s.TagInt("ioam.hop_count")
	require.True(t, ok)
	assert.Equal(t, int64(2), n)
	assert.Equal(t, "00000000000000a1", s.ParentID())
	assert.Equal(t, "athos", tr.Service(s))

	root, ok := tr.Span("00000000000000a0")
	require.True(t, ok)
	assert.Empty(t, root.ParentID())
	assert.Empty(t, root.Hops())
}

func TestKeyValueInt(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   KeyValue
		want int64
		ok   bool
	}{
		{"number", KeyValue{Value: json.Number("9007199254740993")}, 9007199254740993, true},
		{"string int", KeyValue{Value: "0x10"}, 16, true},
		{"string text", KeyValue{Value: "abc"}, 0, false},
		{"bool", KeyValue{Value: true}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.kv.Int()
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRender(t *testing.T) {
	tr, _ := loadTrace(t)
	var buf bytes.Buffer
	require.NoError(t, Render(&buf, tr, Options{NodeNames: map[int64]string{2: "porthos", 3: "aramis"}}))
	out := buf.String()
	t.Log("\n" + out)
	lines := strings.Split(out, "\n")

	assert.Contains(t, lines[0], "trace 5b8efff798038103d269b633813fc60c  (5 spans, 60.000 ms)")
	// Spans in tree order: root, its child, then the children by start time.
	var order []string
	for _, l := range lines {
		for _, op := range []string{"demo request", "GET /api/request", "GET /check", "GET /validate"} {
			if strings.Contains(l, op) {
				order = append(order, strings.TrimSpace(l[:42]))
			}
		}
	}
	assert.Equal(t, []string{"demo request", "GET /api/request", "GET /check", "GET /check", "GET /validate"}, order)
	assert.Contains(t, out, "ns=123 hops=2 path=2 > 3")
	assert.Contains(t, out, "! ioam: report from node 2 not confirmed downstream (path 2)")

	// Hop lines: node names, interfaces, and the porthos → aramis delta.
	var hopLines []string
	for _, l := range lines {
		if strings.Contains(l, "porthos") || strings.Contains(l, "aramis ") && strings.Contains(l, "65535") {
			hopLines = append(hopLines, l)
		}
	}
	require.Len(t, hopLines, 2)
	assert.Regexp(t, `0\s+2 porthos\s+21\s+22\s+10:31:01\.002100\s+hop_limit=63 queue_depth=0`, hopLines[0])
	assert.Regexp(t, `1\s+3 aramis\s+31\s+65535\s+10:31:01\.022345\s+\+20\.245\s+hop_limit=62`, hopLines[1])

	// The aramis server span is indented under the athos client span.
	indentOf := func(service string) int {
		for _, l := range lines {
			if strings.Contains(l, "GET /check") && strings.Contains(l, service) {
				return len(l) - len(strings.TrimLeft(l, " "))
			}
		}
		return -1
	}
	assert.Equal(t, indentOf("athos")+2, indentOf("aramis"))
}

func TestClient(t *testing.T) {
	_, raw := loadTrace(t)
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/traces/5b8efff798038103d269b633813fc60c":
			_, _ = w.Write(raw)
		case r.URL.Path == "/api/traces":
			gotQuery = r.URL.RawQuery
			_, _ = w.Write(raw)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"data":null,"errors":[{"code":404,"msg":"trace not found"}]}`))
		}
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL}

	tr, body, err := c.GetTrace(t.Context(), "5b8efff798038103d269b633813fc60c")
	require.NoError(t, err)
	assert.Len(t, tr.Spans, 5)
	assert.Equal(t, raw, body)

	_, _, err = c.GetTrace(t.Context(), "00000000000000000000000000000001")
	require.ErrorIs(t, err, ErrNotFound)

	trs, err := c.FindTraces(t.Context(), Query{Service: "athos", Tags: map[string]string{"ioam.node_id": "2"},
		Start: time.UnixMicro(10), End: time.UnixMicro(20), Limit: 5})
	require.NoError(t, err)
	assert.Len(t, trs, 1)
	assert.Equal(t, "end=20&limit=5&service=athos&start=10&tag=ioam.node_id%3A2", gotQuery)
}

func TestExtraHidesEmptySnapshots(t *testing.T) {
	assert.Equal(t, "hop_limit=63", extra(Hop{Fields: map[string]string{
		"ioam.node_id": "2", "ioam.hop_limit": "63", "ioam.snapshot_len": "0", "ioam.snapshot_schema_id": "16777215"}}))
	assert.Equal(t, "snapshot_len=24 snapshot_schema_id=0xc17", extra(Hop{Fields: map[string]string{
		"ioam.snapshot_len": "24", "ioam.snapshot_schema_id": "3095"}}))
}
