package roles

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig says where a role sends its spans.
type TracingConfig struct {
	// Service is the service.name resource attribute.
	Service string
	// Node is the host.name resource attribute (the namespace role, e.g. "athos").
	Node string
	// OTLPEndpoint is the OTLP/gRPC endpoint, host:port (e.g. "[fd00:c17:1::1]:4317").
	// Empty disables export (spans are still created, so IDs still exist).
	OTLPEndpoint string
}

// propagator is W3C trace context, as every role uses.
var propagator = propagation.TraceContext{}

// Tracing owns a tracer provider.
type Tracing struct {
	tp     *sdktrace.TracerProvider
	Tracer trace.Tracer
}

// NewTracing builds a tracer provider exporting to cfg.OTLPEndpoint. Spans are
// batched with a short timeout so that the demo can read them back quickly.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.Service),
		attribute.String("host.name", cfg.Node),
	)
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	}
	if cfg.OTLPEndpoint != "" {
		exp, err := otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint),
			otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithTimeout(5*time.Second),
		)
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(200*time.Millisecond)))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{tp: tp, Tracer: tp.Tracer("github.com/cross-layer-telemetry/clt/examples/demo")}, nil
}

// Provider returns the SDK tracer provider.
func (t *Tracing) Provider() *sdktrace.TracerProvider { return t.tp }

// Close flushes pending spans (bounded by a 5 s timeout) and stops the exporter.
func (t *Tracing) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(t.tp.ForceFlush(ctx), t.tp.Shutdown(ctx))
}
