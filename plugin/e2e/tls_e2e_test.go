//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf/tlsconftest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// jaegerTLSBackend is the README's secured backend block (docs: README
// "Security"): mutual TLS to clt-storage plus a bearer token header.
const jaegerTLSBackend = `          tls:
            ca_file: %[1]s
            cert_file: %[2]s
            key_file: %[3]s
            server_name_override: storage.test
          headers:
            authorization: "Bearer %[4]s"
`

// TestJaegerOverMutualTLSWithToken: the real Jaeger writes and reads
// through clt-storage's storage port under mutual TLS and a bearer token
// holding reader + writer; clients without the certificate or the token
// are refused (issue 12 item 1).
func TestJaegerOverMutualTLSWithToken(t *testing.T) {
	bin := jaegerBin(t)
	dir := t.TempDir()
	p := tlsconftest.New(t)
	scert, skey := p.Server("storage", "storage.test")
	ccert, ckey := p.Client("jaeger", "jaeger")
	const token = "jaeger-e2e-token-0123456789"
	tokFile := filepath.Join(dir, "jaeger.token")
	require.NoError(t, os.WriteFile(tokFile, []byte(token+"\n"), 0o600))

	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen, cfg.Collector.Listen, cfg.Admin.Listen = "127.0.0.1:0", "", ""
	cfg.Storage.TLS = plugin.TLSConfig{CertFile: scert, KeyFile: skey, ClientCAFile: p.CAFile, ClientAuth: "require"}
	cfg.Storage.Auth.Tokens = []plugin.TokenConfig{{Name: "jaeger", File: tokFile, Roles: []string{plugin.RoleReader, plugin.RoleWriter}}}
	cfg.Store.Dir = filepath.Join(dir, "data")
	cfg.Store.BlockCacheMB, cfg.Store.MemTableMB = 16, 8
	srv, err := plugin.New(cfg, plugin.Settings{})
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	insecureBlock := "          tls:\n            insecure: true\n"
	require.Contains(t, jaegerConfig, insecureBlock)
	conf := strings.Replace(jaegerConfig, insecureBlock, fmt.Sprintf(jaegerTLSBackend, p.CAFile, ccert, ckey, token), 1)
	queryHTTP, otlpGRPC, health := freeAddr(t), freeAddr(t), freeAddr(t)
	confFile := filepath.Join(dir, "jaeger.yaml")
	require.NoError(t, os.WriteFile(confFile, fmt.Appendf(nil, conf, health, queryHTTP, freeAddr(t), srv.StorageAddr(), otlpGRPC), 0o644))
	runJaeger(t, bin, confFile, health, dir)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	oc, err := grpc.NewClient(otlpGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer oc.Close()
	tid := mustHex("c17e2e000000000000000000000000f1")
	start := time.Now().Add(-time.Second)
	_, err = coltracepb.NewTraceServiceClient(oc).Export(ctx, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "clt-tls-e2e"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: tid, SpanId: mustHex("00000000000000f1"), Name: "op",
			StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(time.Millisecond).UnixNano())}}}},
	}}})
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if tr := getJSON(t, "http://"+queryHTTP+"/api/traces/"+hex.EncodeToString(tid)); len(tr) == 1 && len(tr[0].Spans) == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "trace not readable through Jaeger over mTLS after 30s")
		time.Sleep(200 * time.Millisecond)
	}

	// The same port refuses a client without a certificate, and one with
	// the certificate but without the token.
	kp, err := tls.LoadX509KeyPair(ccert, ckey)
	require.NoError(t, err)
	call := func(tc *tls.Config, md ...string) error {
		c, err := grpc.NewClient(srv.StorageAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		require.NoError(t, err)
		defer c.Close()
		_, err = storagev2.NewTraceReaderClient(c).GetServices(metadata.AppendToOutgoingContext(ctx, md...), &storagev2.GetServicesRequest{})
		return err
	}
	noCert := &tls.Config{RootCAs: p.Pool, ServerName: "storage.test"}
	withCert := &tls.Config{RootCAs: p.Pool, ServerName: "storage.test", Certificates: []tls.Certificate{kp}}
	assert.Equal(t, codes.Unavailable, status.Code(call(noCert, "authorization", "Bearer "+token)), "no client certificate")
	assert.Equal(t, codes.Unauthenticated, status.Code(call(withCert)), "no token")
	require.NoError(t, call(withCert, "authorization", "Bearer "+token))
}

// runJaeger starts the Jaeger binary on conf and waits for its health port.
func runJaeger(t *testing.T, bin, conf, health, dir string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "jaeger.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config", conf)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_SAMPLER=always_off")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := waitProc(cmd)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited.done
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("jaeger log:\n%s", tail(b, 4000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get("http://" + health + "/status"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited.done:
			t.Fatalf("jaeger exited: %v", exited.err)
		default:
		}
		require.True(t, time.Now().Before(deadline), "jaeger not healthy after 60s")
		time.Sleep(200 * time.Millisecond)
	}
}
