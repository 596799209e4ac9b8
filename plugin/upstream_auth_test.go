package plugin

import (
	"encoding/base64"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/internal/tlsconf/tlsconftest"
)

// TestUpstreamTLSAndToken: upstream mode over TLS with a bearer token to
// an upstream that checks both (an embedded clt-storage with storage.tls
// and storage.auth; plugin/e2e runs the real remote_storage over TLS with
// basic auth). A wrong token is refused with the upstream's code, a
// rotated token is picked up by ReloadTLS (SIGHUP), an unknown CA fails
// the connection unless insecure_skip_verify.
func TestUpstreamTLSAndToken(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("upstream", "upstream.test")
	dir := t.TempDir()
	upTok := writeToken(t, dir, "up", writerToken)
	up := startEnv(t, func(c *Config) {
		c.Storage.TLS = TLSConfig{CertFile: cert, KeyFile: key}
		c.Storage.Auth.Tokens = []TokenConfig{{Name: "clt", File: upTok, Roles: []string{RoleReader, RoleWriter}}}
	})
	front := func(tls UpstreamTLSConfig, tokFile string) *env {
		return startEnv(t, func(c *Config) {
			c.Upstream.Endpoint = up.srv.StorageAddr().String()
			c.Upstream.HealthInterval = 50 * time.Millisecond
			c.Upstream.NodeRefresh = 0
			c.Upstream.TLS = tls
			if tokFile != "" {
				c.Upstream.Auth = UpstreamAuthConfig{BearerTokenFile: tokFile}
			}
		})
	}
	verified := UpstreamTLSConfig{Enabled: true, CAFile: p.CAFile, ServerName: "upstream.test"}
	frontTok := writeToken(t, dir, "front", writerToken)
	good := front(verified, frontTok)
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	feed(t, good, start)
	var path string
	for _, sp := range spansOf(good.getTraces(t, tid(1))) {
		if string(sp.SpanId) == string(sid(1)) {
			path = attrMap(sp.Attributes)[AttrPath].GetStringValue()
		}
	}
	assert.Equal(t, "1 > 2 > 3", path, "written and read enriched over TLS with the token")

	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		spanSpec{trace: 3, span: 1, service: "svc", name: "op", start: start, dur: time.Millisecond}.resourceSpans()}}
	report := &collectorv1.ReportRequest{AgentId: "a", Records: []*collectorv1.IOAMRecord{upRec(3, start, 1, 2, 3)}}

	wrong := front(verified, writeToken(t, dir, "wrong", "wrong-token-0123456789"))
	_, err := wrong.otlp.Export(t.Context(), req)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "the upstream's refusal is passed on: %v", err)
	_, err = wrong.collector.Report(t.Context(), report)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "reports too: %v", err)

	noToken := front(verified, "")
	_, err = noToken.otlp.Export(t.Context(), req)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "no token: %v", err)

	// Rotation: the upstream takes a new token; the front fails until its
	// own file is rewritten and re-read.
	const rotated = "rotated-token-0123456789"
	require.NoError(t, os.WriteFile(upTok, []byte(rotated), 0o600))
	require.NoError(t, up.srv.ReloadTLS())
	_, err = good.otlp.Export(t.Context(), req)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "old token after the upstream rotated: %v", err)
	require.NoError(t, os.WriteFile(frontTok, []byte(rotated+"\n"), 0o600))
	require.NoError(t, good.srv.ReloadTLS())
	_, err = good.otlp.Export(t.Context(), req)
	require.NoError(t, err, "new token after SIGHUP's reload")
	require.NoError(t, os.WriteFile(frontTok, nil, 0o600))
	assert.ErrorContains(t, good.srv.ReloadTLS(), "upstream.auth.bearer_token_file:", "an empty file is an error")
	_, err = good.otlp.Export(t.Context(), req)
	require.NoError(t, err, "and the previous token stays")

	// Unknown CA: no connection (Unavailable, the exporter retries);
	// insecure_skip_verify connects anyway.
	require.NoError(t, os.WriteFile(frontTok, []byte(rotated), 0o600))
	systemRoots := front(UpstreamTLSConfig{Enabled: true, ServerName: "upstream.test"}, frontTok)
	_, err = systemRoots.otlp.Export(t.Context(), req)
	assert.Equal(t, codes.Unavailable, status.Code(err), "certificate of an unknown CA: %v", err)
	skip := front(UpstreamTLSConfig{Enabled: true, InsecureSkipVerify: true}, frontTok)
	_, err = skip.otlp.Export(t.Context(), req)
	require.NoError(t, err, "insecure_skip_verify")
}

func TestUpstreamAuthConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Upstream.Auth.Username = "clt"
	assert.ErrorContains(t, cfg.Validate(), "upstream.endpoint: must be set")

	for _, c := range []struct {
		auth UpstreamAuthConfig
		tls  UpstreamTLSConfig
		want string
	}{
		{UpstreamAuthConfig{BearerTokenFile: "f"}, UpstreamTLSConfig{}, "upstream.auth: needs upstream.tls.enabled"},
		{UpstreamAuthConfig{BearerTokenFile: "f", BearerTokenEnv: "E"}, UpstreamTLSConfig{Enabled: true}, "bearer_token_file or bearer_token_env, not both"},
		{UpstreamAuthConfig{BearerTokenFile: "f", Username: "u", PasswordEnv: "P"}, UpstreamTLSConfig{Enabled: true}, "not both"},
		{UpstreamAuthConfig{PasswordFile: "f"}, UpstreamTLSConfig{Enabled: true}, "upstream.auth.username: must be set"},
		{UpstreamAuthConfig{Username: "u"}, UpstreamTLSConfig{Enabled: true}, "exactly one of password_file and password_env"},
		{UpstreamAuthConfig{}, UpstreamTLSConfig{InsecureSkipVerify: true}, "upstream.tls: ca_file, cert_file, key_file, server_name or insecure_skip_verify set but"},
		{UpstreamAuthConfig{}, UpstreamTLSConfig{Enabled: true, InsecureSkipVerify: true, CAFile: "ca"}, "insecure_skip_verify ignores ca_file"},
	} {
		cfg := DefaultConfig()
		cfg.Upstream.Endpoint = "up:17281"
		cfg.Upstream.Auth, cfg.Upstream.TLS = c.auth, c.tls
		assert.ErrorContains(t, cfg.Validate(), c.want, "%+v", c)
	}

	cfg, err := ParseConfig([]byte("upstream:\n  endpoint: up:17281\n  tls: {enabled: true, insecure_skip_verify: true}\n" +
		"  auth: {username: clt, password_env: CLT_TEST_UP_PW}\n"))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	_, err = newUpstreamAuth(cfg.Upstream.Auth)
	assert.ErrorContains(t, err, "upstream.auth.password_env: environment variable CLT_TEST_UP_PW is empty or unset")
	t.Setenv("CLT_TEST_UP_PW", " s3cret\n")
	a, err := newUpstreamAuth(cfg.Upstream.Auth)
	require.NoError(t, err)
	md, err := a.GetRequestMetadata(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("clt:s3cret")), md["authorization"])
	assert.True(t, a.RequireTransportSecurity())
}
