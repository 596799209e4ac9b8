//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf/tlsconftest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// remoteStorageSecured is the remote_storage block of a secured upstream
// tier (README "Scale-out: upstream mode"): mutual TLS on its gRPC port
// and Jaeger's basicauth extension checking every call.
const remoteStorageSecured = `  remote_storage:
    endpoint: %[1]s
    storage: up
    tls:
      cert_file: %[2]s
      key_file: %[3]s
      client_ca_file: %[4]s
    auth:
      authenticator: basicauth/upstream
  basicauth/upstream:
    htpasswd:
      inline: |
        clt:%[5]s
`

// TestUpstreamOverMutualTLSAndBasicAuth: clt-storage in upstream mode
// writes and reads through a real Jaeger remote_storage whose gRPC port
// requires a client certificate and a password (upstream.tls,
// upstream.auth); without either, or with a wrong password, nothing gets
// through and the error is the upstream's.
func TestUpstreamOverMutualTLSAndBasicAuth(t *testing.T) {
	bin := jaegerBin(t)
	dir := t.TempDir()
	p := tlsconftest.New(t)
	scert, skey := p.Server("upstream", "upstream.test")
	ccert, ckey := p.Client("clt", "clt-storage")
	const password = "upstream-e2e-password-0123"
	pwFile := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(pwFile, []byte(password+"\n"), 0o600))

	remote, remoteHealth := freeAddr(t), freeAddr(t)
	plainBlock := "  remote_storage:\n    endpoint: %[2]s\n    storage: up\n"
	require.Contains(t, remoteStorageConfig, plainBlock)
	conf := strings.Replace(remoteStorageConfig, plainBlock, fmt.Sprintf(remoteStorageSecured, "%[2]s", scert, skey, p.CAFile, password), 1)
	conf = strings.Replace(conf, "extensions: [jaeger_storage, remote_storage, healthcheckv2]",
		"extensions: [jaeger_storage, basicauth/upstream, remote_storage, healthcheckv2]", 1)
	remoteConf := filepath.Join(dir, "remote.yaml")
	require.NoError(t, os.WriteFile(remoteConf, fmt.Appendf(nil, conf, remoteHealth, remote, freeAddr(t), upstreamMemory), 0o644))
	startJaeger(t, bin, remoteConf, remoteHealth, filepath.Join(dir, "remote.log"))

	secured := plugin.UpstreamTLSConfig{Enabled: true, CAFile: p.CAFile, CertFile: ccert, KeyFile: ckey, ServerName: "upstream.test"}
	replica := func(tc plugin.UpstreamTLSConfig, pw string) *plugin.Server {
		cfg := plugin.DefaultConfig()
		cfg.Storage.Listen, cfg.Collector.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.Upstream.Endpoint = remote
		cfg.Upstream.HealthInterval = 100 * time.Millisecond
		cfg.Upstream.TLS = tc
		if pw != "" {
			cfg.Upstream.Auth = plugin.UpstreamAuthConfig{Username: "clt", PasswordFile: pw}
		}
		srv, err := plugin.New(cfg, plugin.Settings{})
		require.NoError(t, err)
		require.NoError(t, srv.Start(t.Context()))
		t.Cleanup(func() { require.NoError(t, srv.Close()) })
		return srv
	}
	srv := replica(secured, pwFile)

	queryHTTP, otlpFront, health := freeAddr(t), freeAddr(t), freeAddr(t)
	frontConf := filepath.Join(dir, "jaeger.yaml")
	require.NoError(t, os.WriteFile(frontConf, fmt.Appendf(nil, jaegerConfig, health, queryHTTP, freeAddr(t), srv.StorageAddr(), otlpFront), 0o644))
	startJaeger(t, bin, frontConf, health, filepath.Join(dir, "jaeger.log"))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dial := func(addr string) *grpc.ClientConn { return dialLoopback(t, addr) }
	start := time.Now().Add(-2 * time.Second)
	report := func(s *plugin.Server) error {
		_, err := collectorv1.NewCollectorServiceClient(dial(s.CollectorAddr().String())).Report(ctx,
			&collectorv1.ReportRequest{AgentId: "e2e", Records: []*collectorv1.IOAMRecord{record(3, start, 1, 2, 3)}})
		return err
	}
	require.NoError(t, report(srv))
	_, err := coltracepb.NewTraceServiceClient(dial(otlpFront)).Export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "clt-e2e"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: traceID, SpanId: serverSpan, Name: "GET /api",
			Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(50 * time.Millisecond).UnixNano())}}}},
	}}})
	require.NoError(t, err)
	url := "http://" + queryHTTP + "/api/traces/" + hex.EncodeToString(traceID)
	require.Eventually(t, func() bool {
		for _, tr := range getJSON(t, url) {
			for _, sp := range tr.Spans {
				for _, tg := range sp.Tags {
					if tg.Key == plugin.AttrPath && tg.Value == "1 > 2 > 3" {
						return true
					}
				}
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "written and read enriched over mutual TLS with basic auth")

	// Nothing gets through without the certificate or the password.
	wrongPW := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrongPW, []byte("not-the-password-0123"), 0o600))
	assert.Equal(t, codes.Unauthenticated, status.Code(report(replica(secured, wrongPW))), "wrong password")
	noCert := secured
	noCert.CertFile, noCert.KeyFile = "", ""
	assert.Equal(t, codes.Unavailable, status.Code(report(replica(noCert, pwFile))), "no client certificate")

	kp, err := tls.LoadX509KeyPair(ccert, ckey)
	require.NoError(t, err)
	direct, err := grpc.NewClient(remote, grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: p.Pool, ServerName: "upstream.test", Certificates: []tls.Certificate{kp}})))
	require.NoError(t, err)
	defer direct.Close()
	_, err = storagev2.NewTraceReaderClient(direct).GetServices(ctx, &storagev2.GetServicesRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "the tier itself refuses a client without the password: %v", err)
	_, err = storagev2.NewTraceReaderClient(dial(remote)).GetServices(ctx, &storagev2.GetServicesRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err), "and plaintext: %v", err)

	// The replica with the wrong password reports itself unhealthy.
	bad := replica(secured, wrongPW)
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + bad.AdminAddr().String() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 10*time.Second, 100*time.Millisecond, "health follows the refused upstream")
}
