package roles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ClientConfig configures the load client.
type ClientConfig struct {
	// API is athos's URL, e.g. "http://[fd00:c17:1::2]:15123/api/request".
	API string
	// Requests is the number of API calls (bounded, > 0).
	Requests int
	// Interval is the pause between two calls.
	Interval time.Duration
	// Timeout bounds each call.
	Timeout time.Duration
}

// Validate checks the bounds.
func (c ClientConfig) Validate() error {
	var errs []error
	if c.API == "" {
		errs = append(errs, errors.New("client: api URL required"))
	}
	if c.Requests <= 0 || c.Requests > 10000 {
		errs = append(errs, errors.New("client: requests must be in [1, 10000]"))
	}
	if c.Interval < 0 {
		errs = append(errs, errors.New("client: interval must be >= 0"))
	}
	return errors.Join(errs...)
}

// ClientResult is one line of the client's JSON-lines output.
type ClientResult struct {
	Seq        int         `json:"seq"`
	TraceID    string      `json:"trace_id"`
	SpanID     string      `json:"span_id"`
	Status     int         `json:"status"`
	DurationUS int64       `json:"duration_us"`
	Error      string      `json:"error,omitempty"`
	API        APIResponse `json:"api"`
}

// RunClient makes cfg.Requests calls, one root span each, and writes one
// ClientResult per call to out. It returns an error if any call failed.
func RunClient(ctx context.Context, tr *Tracing, cfg ClientConfig, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	hc := &http.Client{Timeout: cfg.Timeout}
	enc := json.NewEncoder(out)
	var errs []error
	for i := range cfg.Requests {
		if i > 0 && cfg.Interval > 0 {
			select {
			case <-time.After(cfg.Interval):
			case <-ctx.Done():
				return errors.Join(append(errs, ctx.Err())...)
			}
		}
		res := callAPI(ctx, tr.Tracer, hc, cfg.API, i)
		if res.Error != "" {
			errs = append(errs, fmt.Errorf("request %d: %s", i, res.Error))
		}
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	}
	return errors.Join(errs...)
}

func callAPI(ctx context.Context, tr trace.Tracer, hc *http.Client, url string, seq int) ClientResult {
	ctx, span := tr.Start(ctx, "client request", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("url.full", url), attribute.Int("demo.seq", seq)))
	defer span.End()
	sc := span.SpanContext()
	res := ClientResult{Seq: seq, TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String()}
	start := time.Now()
	defer func() { res.DurationUS = time.Since(start).Microseconds() }()
	fail := func(err error) ClientResult {
		res.Error = err.Error()
		res.DurationUS = time.Since(start).Microseconds()
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(err)
	}
	propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	r, err := hc.Do(req)
	if err != nil {
		return fail(err)
	}
	defer r.Body.Close()
	res.Status = r.StatusCode
	span.SetAttributes(attribute.Int("http.response.status_code", r.StatusCode))
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(body, &res.API); err != nil {
		return fail(fmt.Errorf("decode api response (status %d): %w", r.StatusCode, err))
	}
	if r.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("api status %d", r.StatusCode))
	}
	res.DurationUS = time.Since(start).Microseconds()
	return res
}
