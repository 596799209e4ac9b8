package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// AthosPort is the API port of the original demo (contracts.md).
const AthosPort = 15123

// AthosConfig configures the API entrypoint.
type AthosConfig struct {
	// Listen holds the listen addresses (host:port).
	Listen []string
	// Aramis is the base URL of the server, e.g. "http://[fd00:c17:3::2]:8000".
	Aramis string
	// Transport sends the sub-requests; it is the CLT transport in the demo.
	// Nil means a plain *http.Transport (no IOAM).
	Transport http.RoundTripper
	// Timeout bounds each sub-request.
	Timeout time.Duration
	// Stats, if set, is served as JSON on /debug/clt (the CLT transport's
	// counters: options applied, skipped…).
	Stats func() any
}

// SubResult describes one sub-request of an API call.
type SubResult struct {
	Path      string `json:"path"`
	SpanID    string `json:"span_id"`
	Status    int    `json:"status"`
	LocalAddr string `json:"local_addr,omitempty"`
	Reused    bool   `json:"reused"`
	Error     string `json:"error,omitempty"`
}

// APIResponse is the body of `/api/request`.
type APIResponse struct {
	TraceID string      `json:"trace_id"`
	SpanID  string      `json:"span_id"`
	Subs    []SubResult `json:"subrequests"`
}

// NewAthosTransport returns the base transport athos uses under the CLT
// transport: a single keep-alive connection per host, so that both
// sub-requests of an API call ride on one TCP connection and the CLT transport
// has to switch the IOAM option from one span to the next on it.
func NewAthosTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
}

// Athos is the API entrypoint.
type Athos struct {
	cfg    AthosConfig
	tracer trace.Tracer
	client *http.Client
}

// NewAthos builds the API handler.
func NewAthos(tr trace.Tracer, cfg AthosConfig) (*Athos, error) {
	if cfg.Aramis == "" {
		return nil, errors.New("athos: aramis URL required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	rt := cfg.Transport
	if rt == nil {
		rt = NewAthosTransport()
	}
	return &Athos{cfg: cfg, tracer: tr, client: &http.Client{Transport: rt, Timeout: cfg.Timeout}}, nil
}

// Handler serves /api/request and /healthz.
func (a *Athos) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/request", a.handleAPI)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if a.cfg.Stats != nil {
		mux.HandleFunc("GET /debug/clt", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(a.cfg.Stats())
		})
	}
	return mux
}

func (a *Athos) handleAPI(w http.ResponseWriter, r *http.Request) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := a.tracer.Start(ctx, "GET /api/request", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("client.address", r.RemoteAddr),
		))
	defer span.End()
	sc := span.SpanContext()
	resp := APIResponse{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String()}
	status := http.StatusOK
	// Sequential on purpose: one keep-alive connection, two spans in turn.
	for _, p := range []string{"/check", "/validate"} {
		res := a.call(ctx, p)
		if res.Error != "" || res.Status != http.StatusOK {
			status = http.StatusBadGateway
		}
		resp.Subs = append(resp.Subs, res)
	}
	if status != http.StatusOK {
		span.SetStatus(codes.Error, "sub-request failed")
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}

func (a *Athos) call(ctx context.Context, path string) SubResult {
	url := strings.TrimSuffix(a.cfg.Aramis, "/") + path
	ctx, span := a.tracer.Start(ctx, "GET "+path, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", http.MethodGet),
			attribute.String("url.full", url),
			attribute.String("peer.service", "aramis"),
		))
	defer span.End()
	res := SubResult{Path: path, SpanID: span.SpanContext().SpanID().String()}
	fail := func(err error) SubResult {
		res.Error = err.Error()
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return res
	}
	var conn httptrace.GotConnInfo
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { conn = i }})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(err)
	}
	propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	r, err := a.client.Do(req)
	if conn.Conn != nil {
		res.LocalAddr = conn.Conn.LocalAddr().String()
		res.Reused = conn.Reused
		span.SetAttributes(attribute.String("network.local.address", res.LocalAddr),
			attribute.Bool("demo.conn_reused", conn.Reused))
	}
	if err != nil {
		return fail(err)
	}
	// Drain so the connection goes back to the pool for the next sub-request.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	_ = r.Body.Close()
	res.Status = r.StatusCode
	span.SetAttributes(attribute.Int("http.response.status_code", r.StatusCode))
	if r.StatusCode != http.StatusOK {
		span.SetStatus(codes.Error, fmt.Sprintf("status %d", r.StatusCode))
	}
	return res
}

// RunAthos serves until ctx is done.
func RunAthos(ctx context.Context, tr *Tracing, cfg AthosConfig, ready func()) error {
	a, err := NewAthos(tr.Tracer, cfg)
	if err != nil {
		return err
	}
	return Serve(ctx, cfg.Listen, a.Handler(), ready)
}
