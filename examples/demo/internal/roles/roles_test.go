package roles

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func memTracing(t *testing.T) (*Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Tracing{tp: tp, Tracer: tp.Tracer("test")}, exp
}

// recordingTransport counts the requests and the distinct connections used.
type recordingTransport struct {
	base  *http.Transport
	spans []trace.SpanID
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.spans = append(r.spans, trace.SpanContextFromContext(req.Context()).SpanID())
	return r.base.RoundTrip(req)
}

func TestScenarioInProcess(t *testing.T) {
	tr, exp := memTracing(t)
	aramis := httptest.NewServer(AramisHandler(tr.Tracer, AramisConfig{Listen: []string{"x"}, DelayMin: time.Millisecond, DelayMax: 3 * time.Millisecond}))
	defer aramis.Close()
	base := NewAthosTransport()
	defer base.CloseIdleConnections()
	rt := &recordingTransport{base: base}
	athos, err := NewAthos(tr.Tracer, AthosConfig{Aramis: aramis.URL, Transport: rt})
	require.NoError(t, err)
	api := httptest.NewServer(athos.Handler())
	defer api.Close()

	var out bytes.Buffer
	require.NoError(t, RunClient(t.Context(), tr, ClientConfig{API: api.URL + "/api/request", Requests: 3}, &out))

	dec := json.NewDecoder(&out)
	var results []ClientResult
	for dec.More() {
		var r ClientResult
		require.NoError(t, dec.Decode(&r))
		results = append(results, r)
	}
	require.Len(t, results, 3)
	local := ""
	for i, r := range results {
		assert.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, r.TraceID, r.API.TraceID, "trace context must reach athos")
		require.Len(t, r.API.Subs, 2)
		assert.Equal(t, "/check", r.API.Subs[0].Path)
		assert.Equal(t, "/validate", r.API.Subs[1].Path)
		for j, s := range r.API.Subs {
			if local == "" {
				local = s.LocalAddr
			}
			assert.Equal(t, local, s.LocalAddr, "one keep-alive connection for every sub-request")
			assert.Equal(t, i+j > 0, s.Reused)
		}
	}
	// The transport saw each sub-request's own client span in the request context.
	require.Len(t, rt.spans, 6)
	assert.Equal(t, results[0].API.Subs[0].SpanID, rt.spans[0].String())
	assert.Equal(t, results[0].API.Subs[1].SpanID, rt.spans[1].String())

	spans := exp.GetSpans()
	require.Len(t, spans, 3*6)
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	servers := 0
	for _, s := range spans {
		if s.Name == "GET /check" && s.SpanKind == trace.SpanKindServer {
			servers++
			parent := byID[s.Parent.SpanID()]
			assert.Equal(t, "GET /check", parent.Name)
			assert.Equal(t, trace.SpanKindClient, parent.SpanKind, "aramis's span is a child of athos's client span")
		}
	}
	assert.Equal(t, 3, servers)
}

func TestAramisDelayBounds(t *testing.T) {
	tr, _ := memTracing(t)
	h := AramisHandler(tr.Tracer, AramisConfig{DelayMin: 5 * time.Millisecond, DelayMax: 8 * time.Millisecond})
	for range 5 {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/validate", nil))
		assert.GreaterOrEqual(t, time.Since(start), 5*time.Millisecond)
		var body struct {
			DelayUS int64 `json:"delay_us"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		assert.GreaterOrEqual(t, body.DelayUS, int64(5000))
		assert.LessOrEqual(t, body.DelayUS, int64(8000))
	}
	require.Error(t, AramisConfig{Listen: []string{":1"}, DelayMin: 2, DelayMax: 1}.Validate())
}

func TestClientReportsFailure(t *testing.T) {
	tr, _ := memTracing(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	var out bytes.Buffer
	err = RunClient(t.Context(), tr, ClientConfig{API: "http://" + addr + "/api/request", Requests: 1, Timeout: 2 * time.Second}, &out)
	require.Error(t, err)
	var r ClientResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	assert.NotEmpty(t, r.Error)
	assert.Len(t, r.TraceID, 32)
}

// /api/reroute: two requests in one client span on one connection, the
// route switched between them and back after the span; /api/report goes
// through the Report transport.
func TestRerouteAndReport(t *testing.T) {
	tr, exp := memTracing(t)
	aramis := httptest.NewServer(AramisHandler(tr.Tracer, AramisConfig{Listen: []string{"x"}}))
	defer aramis.Close()
	base, small := NewAthosTransport(), NewAthosTransport()
	defer base.CloseIdleConnections()
	defer small.CloseIdleConnections()
	rt, report := &recordingTransport{base: base}, &recordingTransport{base: small}
	var events []string
	reroute := func(_ context.Context, via string) error {
		events = append(events, "route "+via+" after "+strconv.Itoa(len(rt.spans))+" requests")
		return nil
	}
	athos, err := NewAthos(tr.Tracer, AthosConfig{Aramis: aramis.URL, Transport: rt, Report: report, Reroute: reroute})
	require.NoError(t, err)
	api := httptest.NewServer(athos.Handler())
	defer api.Close()

	var out bytes.Buffer
	require.NoError(t, RunClient(t.Context(), tr, ClientConfig{API: api.URL + PathReroute, Requests: 1}, &out))
	var r ClientResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	require.Len(t, r.API.Subs, 2)
	assert.Equal(t, "/data?part=1", r.API.Subs[0].Path)
	assert.Equal(t, "/data?part=2", r.API.Subs[1].Path)
	assert.Equal(t, r.API.Subs[0].SpanID, r.API.Subs[1].SpanID, "one span")
	assert.Equal(t, r.API.Subs[0].LocalAddr, r.API.Subs[1].LocalAddr, "one connection")
	require.Len(t, rt.spans, 2)
	assert.Equal(t, rt.spans[0], rt.spans[1], "both requests carry the span")
	assert.Equal(t, []string{"route planchet after 1 requests", "route direct after 2 requests"}, events)
	assert.Empty(t, report.spans)

	out.Reset()
	require.NoError(t, RunClient(t.Context(), tr, ClientConfig{API: api.URL + PathReport, Requests: 1}, &out))
	require.NoError(t, json.Unmarshal(out.Bytes(), &r))
	require.Len(t, r.API.Subs, 1)
	assert.Equal(t, "/report", r.API.Subs[0].Path)
	require.Len(t, report.spans, 1, "the report transport sent it")
	assert.Equal(t, r.API.Subs[0].SpanID, report.spans[0].String())
	assert.Len(t, rt.spans, 2)

	names := map[string]int{}
	for _, s := range exp.GetSpans() {
		names[s.Name]++
	}
	assert.Equal(t, 1, names["GET /api/reroute"])
	assert.Equal(t, 3, names["GET /data"], "athos's one client span, aramis's two server spans")
	assert.Equal(t, 2, names["GET /report"])
}

func TestRerouteFailureFailsTheCall(t *testing.T) {
	tr, _ := memTracing(t)
	aramis := httptest.NewServer(AramisHandler(tr.Tracer, AramisConfig{Listen: []string{"x"}}))
	defer aramis.Close()
	base := NewAthosTransport()
	defer base.CloseIdleConnections()
	athos, err := NewAthos(tr.Tracer, AthosConfig{Aramis: aramis.URL, Transport: base,
		Reroute: func(context.Context, string) error { return errors.New("no route") }})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	athos.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathReroute, nil))
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.Contains(t, rec.Body.String(), "reroute: no route")
}
