package roles

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// AramisConfig configures the server.
type AramisConfig struct {
	// Listen holds the listen addresses (host:port).
	Listen []string
	// DelayMin and DelayMax bound the random processing delay of each request.
	DelayMin, DelayMax time.Duration
}

// Validate checks the delay bounds.
func (c AramisConfig) Validate() error {
	var errs []error
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("aramis: listen address required"))
	}
	if c.DelayMin < 0 || c.DelayMax < c.DelayMin {
		errs = append(errs, errors.New("aramis: need 0 <= delay-min <= delay-max"))
	}
	return errors.Join(errs...)
}

// AramisHandler serves /check, /validate, /report and /data; exported for tests.
func AramisHandler(tr trace.Tracer, cfg AramisConfig) http.Handler {
	mux := http.NewServeMux()
	for _, path := range []string{"/check", "/validate", "/report", "/data"} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tr.Start(ctx, "GET "+path, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", r.Method),
					attribute.String("url.path", path),
					attribute.String("client.address", r.RemoteAddr),
				))
			defer span.End()
			d := cfg.DelayMin
			if span := cfg.DelayMax - cfg.DelayMin; span > 0 {
				d += rand.N(span + 1)
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			span.SetAttributes(attribute.Int64("demo.delay_us", d.Microseconds()),
				attribute.Int("http.response.status_code", http.StatusOK))
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "path": path, "delay_us": d.Microseconds()})
		})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

// RunAramis serves until ctx is done.
func RunAramis(ctx context.Context, tr *Tracing, cfg AramisConfig, ready func()) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	return Serve(ctx, cfg.Listen, AramisHandler(tr.Tracer, cfg), ready)
}
