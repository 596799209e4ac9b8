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

// testdata/trace.json is a congested trace of the demo as Jaeger returned
// it (clt-storage's enrichment: hop summaries, network spans).
const (
	testTrace = "531594f505e2d8415968b9aa254482ad"
	testCheck = "8b6a7e8028476805" // athos's GET /check
)

func TestHopsOrderedAndTyped(t *testing.T) {
	tr, _ := loadTrace(t)
	s, ok := tr.Span(testCheck)
	require.True(t, ok)
	hops := s.Hops()
	require.Len(t, hops, 3)

	for i, want := range []struct {
		node, in, out int64
		label, name   string
	}{{1, -1, 11, "athos", "athos"}, {2, 21, 22, "porthos", "porthos"}, {3, 31, -1, "aramis", "aramis"}} {
		assert.Equal(t, int64(i), hops[i].Index)
		assert.Equal(t, want.node, hops[i].NodeID)
		assert.Equal(t, want.in, hops[i].IngressIf, "hop %d ingress (- when not available)", i)
		assert.Equal(t, want.out, hops[i].EgressIf, "hop %d egress", i)
		assert.Equal(t, want.label, hops[i].Label)
		assert.Equal(t, want.name, hops[i].Name())
	}
	assert.Equal(t, "hop 2 · aramis (node 3) · if 31 → – · +50.416 ms", hops[2].Summary)
	assert.Equal(t, 50416*time.Microsecond, hops[2].Time.Sub(hops[1].Time))
	hl, ok := hops[2].Field("ioam.hop_limit")
	require.True(t, ok)
	assert.Equal(t, int64(62), hl)

	n, ok := s.TagInt("ioam.hop_count")
	require.True(t, ok)
	assert.Equal(t, int64(3), n)
	assert.Equal(t, "625d082f898ab788", s.ParentID())
	assert.Equal(t, "athos", tr.Service(s))
	assert.False(t, s.Synthetic())

	net, ok := tr.Span("22ecb2880ef5c1f0")
	require.True(t, ok)
	assert.True(t, net.Synthetic(), "clt-storage's network span")
	assert.Equal(t, "aramis", tr.Service(net))
	assert.Empty(t, net.Hops())

	root, ok := tr.Span("752aa03d1e5b8880")
	require.True(t, ok)
	assert.Empty(t, root.ParentID())
	assert.Empty(t, root.Hops())
}

func TestHopName(t *testing.T) {
	assert.Equal(t, "", Hop{NodeID: 2, Label: "node 2"}.Name(), "the default label is no name")
	assert.Equal(t, "porthos", Hop{NodeID: 2, Label: "porthos"}.Name())
	assert.Equal(t, "x", summaryLabel("hop 0 · x (node 9) · if – → 1"))
	assert.Equal(t, "", summaryLabel("hop 0"))
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
	require.NoError(t, Render(&buf, tr, Options{}))
	out := buf.String()
	t.Log("\n" + out)
	lines := strings.Split(out, "\n")

	assert.Contains(t, lines[0], "trace "+testTrace+"  (6 spans + 4 network spans, 118.157 ms)")
	assert.NotContains(t, out, "ioam athos → porthos", "network spans are counted, not listed")
	// Spans in tree order: root, its child, then the children by start time.
	var order []string
	for _, l := range lines {
		for _, op := range []string{"client request", "GET /api/request", "GET /check", "GET /validate"} {
			if strings.Contains(l, op) {
				order = append(order, strings.TrimSpace(l[:42]))
			}
		}
	}
	assert.Equal(t, []string{"client request", "GET /api/request", "GET /check", "GET /check", "GET /validate", "GET /validate"}, order)
	assert.Contains(t, out, "ns=123 hops=3 path=1 > 2 > 3 pkts=2 reporters=2")

	// Hop lines: node names as clt-storage labels them, interfaces, the delta.
	var hopLines []string
	for _, l := range lines {
		if strings.Contains(l, "hop_limit=") {
			hopLines = append(hopLines, l)
		}
	}
	require.Len(t, hopLines, 6)
	assert.Regexp(t, `0\s+1 athos\s+-\s+11\s+17:54:54\.550408\s+hop_limit=64 packets=2 snapshot_len_bytes=24 snapshot_schema_id=0x000c17`, hopLines[0])
	assert.Regexp(t, `1\s+2 porthos\s+21\s+22\s+17:54:54\.550464\s+\+0\.056\s+hop_limit=63`, hopLines[1])
	assert.Regexp(t, `2\s+3 aramis\s+31\s+-\s+17:54:54\.600880\s+\+50\.416\s+hop_limit=62`, hopLines[2])

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
		case r.URL.Path == "/api/traces/"+testTrace:
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

	tr, body, err := c.GetTrace(t.Context(), testTrace)
	require.NoError(t, err)
	assert.Len(t, tr.Spans, 10)
	assert.Equal(t, raw, body)

	_, _, err = c.GetTrace(t.Context(), "00000000000000000000000000000001")
	require.ErrorIs(t, err, ErrNotFound)

	trs, err := c.FindTraces(t.Context(), Query{Service: "athos", Tags: map[string]string{"ioam.node_id": "2"},
		Start: time.UnixMicro(10), End: time.UnixMicro(20), Limit: 5})
	require.NoError(t, err)
	assert.Len(t, trs, 1)
	assert.Equal(t, "end=20&limit=5&service=athos&start=10&tag=ioam.node_id%3A2", gotQuery)
}
