package clt_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
)

// An HTTP client whose requests carry their span in an IOAM option. The
// process needs CAP_NET_RAW; without it requests still work, untagged.
func ExampleNewTransport() {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{Logger: slog.Default()})
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(inj.Collector())
	client := &http.Client{Transport: clt.NewTransport(nil, inj)}

	ctx, span := otel.Tracer("example").Start(context.Background(), "GET /")
	defer span.End()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://[fd00:3::2]:8080/", nil)
	if resp, err := client.Do(req); err == nil {
		_ = resp.Body.Close()
	}
}

// UDP: one span per datagram through ancillary data.
func ExampleInjector_WriteMsgUDP() {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	if err != nil {
		panic(err)
	}
	conn, err := net.ListenUDP("udp6", nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx, span := otel.Tracer("example").Start(context.Background(), "send")
	defer span.End()
	dst := &net.UDPAddr{IP: net.ParseIP("fd00:3::2"), Port: 7000}
	_, _ = inj.WriteMsgUDP(ctx, conn, []byte("hello"), dst)
}
