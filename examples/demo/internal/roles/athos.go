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
	// Report sends the sub-request of /api/report; in the demo a CLT
	// transport that pre-allocates fewer hop slots than the path has, so
	// the trace overflows. Nil: Transport.
	Report http.RoundTripper
	// Reroute, if set, is called by /api/reroute between the two requests of
	// its one span with "planchet", and with "direct" once the span ended:
	// the demo's route switch (porthos → aramis through planchet or not).
	Reroute func(ctx context.Context, via string) error
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
	report *http.Client
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
	report := cfg.Report
	if report == nil {
		report = rt
	}
	return &Athos{cfg: cfg, tracer: tr, client: &http.Client{Transport: rt, Timeout: cfg.Timeout},
		report: &http.Client{Transport: report, Timeout: cfg.Timeout}}, nil
}

// Handler serves /api/request and /healthz.
func (a *Athos) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/request", a.handleAPI)
	mux.HandleFunc("GET /api/report", a.handleReport)
	mux.HandleFunc("GET /api/reroute", a.handleReroute)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	if a.cfg.Stats != nil {
		mux.HandleFunc("GET /debug/clt", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(a.cfg.Stats())
		})
	}
	return mux
}

// API paths of athos: /api/request makes two sub-requests (/check, then
// /validate, each in its own span); /api/report one (/report, through the
// Report transport); /api/reroute one span (/data) holding two requests
// with a route change between them.
const (
	PathRequest = "/api/request"
	PathReport  = "/api/report"
	PathReroute = "/api/reroute"
)

func (a *Athos) handleAPI(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(ctx context.Context) []SubResult {
		// Sequential on purpose: one keep-alive connection, two spans in turn.
		var subs []SubResult
		for _, p := range []string{"/check", "/validate"} {
			subs = append(subs, a.call(ctx, a.client, p))
		}
		return subs
	})
}

func (a *Athos) handleReport(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(ctx context.Context) []SubResult {
		return []SubResult{a.call(ctx, a.report, "/report")}
	})
}

// handleReroute sends GET /data?part=1 and ?part=2 in ONE client span, on
// one connection, and asks for the route through planchet in between: the
// span's packets take two paths.
func (a *Athos) handleReroute(w http.ResponseWriter, r *http.Request) {
	a.serve(w, r, func(ctx context.Context) []SubResult {
		url := strings.TrimSuffix(a.cfg.Aramis, "/") + "/data"
		ctx, span := a.clientSpan(ctx, "GET /data", url)
		defer func() {
			span.End()
			if a.cfg.Reroute != nil {
				if err := a.cfg.Reroute(context.WithoutCancel(ctx), "direct"); err != nil {
					span.RecordError(err)
				}
			}
		}()
		first := a.do(ctx, span, a.client, url+"?part=1")
		if first.Error == "" && a.cfg.Reroute != nil {
			if err := a.cfg.Reroute(ctx, "planchet"); err != nil {
				first.Error = "reroute: " + err.Error()
				span.SetStatus(codes.Error, first.Error)
				return []SubResult{first}
			}
		}
		return []SubResult{first, a.do(ctx, span, a.client, url+"?part=2")}
	})
}

// serve runs one API call in a server span; subs makes its sub-requests.
func (a *Athos) serve(w http.ResponseWriter, r *http.Request, subs func(ctx context.Context) []SubResult) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := a.tracer.Start(ctx, "GET "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("client.address", r.RemoteAddr),
		))
	defer span.End()
	sc := span.SpanContext()
	resp := APIResponse{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String()}
	status := http.StatusOK
	for _, res := range subs(ctx) {
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

func (a *Athos) clientSpan(ctx context.Context, name, url string) (context.Context, trace.Span) {
	return a.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("http.request.method", http.MethodGet),
			attribute.String("url.full", url),
			attribute.String("peer.service", "aramis"),
		))
}

// call makes one sub-request in its own client span.
func (a *Athos) call(ctx context.Context, client *http.Client, path string) SubResult {
	url := strings.TrimSuffix(a.cfg.Aramis, "/") + path
	ctx, span := a.clientSpan(ctx, "GET "+path, url)
	defer span.End()
	res := a.do(ctx, span, client, url)
	res.Path = path
	return res
}

// do sends one GET in span (already in ctx) and records its outcome there.
func (a *Athos) do(ctx context.Context, span trace.Span, client *http.Client, url string) SubResult {
	res := SubResult{Path: strings.TrimPrefix(url, strings.TrimSuffix(a.cfg.Aramis, "/")), SpanID: span.SpanContext().SpanID().String()}
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
	r, err := client.Do(req)
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
