package clt_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
)

// An HTTP client whose requests carry their span in an IOAM option. The
// process needs CAP_NET_RAW; without it requests still work, untagged, and
// the skip is counted: every traced connection is either applied or skipped.
func ExampleNewTransport() {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{Logger: slog.Default()})
	if err != nil {
		panic(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(inj.Collector())
	client := &http.Client{Transport: clt.NewTransport(nil, inj)}

	// A server on IPv6 loopback stands in for the real peer.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		panic(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("example").Start(context.Background(), "GET /")
	defer span.End()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	st := inj.Stats()
	fmt.Printf("%s %s; connections applied or skipped: %d\n", resp.Status, body, st.Applied+st.SkippedTotal())
	// Output: 200 OK hello; connections applied or skipped: 1
}

// UDP: one span per datagram through ancillary data.
func ExampleInjector_WriteMsgUDP() {
	inj, err := clt.New(clt.DefaultConfig(), clt.Settings{})
	if err != nil {
		panic(err)
	}
	// A receiver on IPv6 loopback stands in for the real peer.
	peer, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		panic(err)
	}
	defer peer.Close()
	conn, err := net.ListenUDP("udp6", nil)
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("example").Start(context.Background(), "send")
	defer span.End()
	if _, err := inj.WriteMsgUDP(ctx, conn, []byte("hello"), peer.LocalAddr().(*net.UDPAddr)); err != nil {
		panic(err)
	}
	buf := make([]byte, 16)
	n, err := peer.Read(buf)
	if err != nil {
		panic(err)
	}
	st := inj.Stats()
	fmt.Printf("%s; datagrams applied or skipped: %d\n", buf[:n], st.Applied+st.SkippedTotal())
	// Output: hello; datagrams applied or skipped: 1
}
