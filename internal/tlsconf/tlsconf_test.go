package tlsconf

import (
	"crypto/tls"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/internal/tlsconf/tlsconftest"
)

// serve accepts TLS connections with r until the test ends; each handshake
// result is sent on the returned channel.
func serve(t *testing.T, r *Reloader) (string, <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.TLSConfig())
	require.NoError(t, err)
	errc := make(chan error, 16)
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			errc <- c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	return ln.Addr().String(), errc
}

func dial(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// TLS 1.3 reports a refused client certificate on the first read.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && err.Error() != "EOF" {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestReloadOnFileChangeAndOnDemand(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("srv", "one.test")
	r, err := New("storage.tls", Config{CertFile: cert, KeyFile: key}, nil)
	require.NoError(t, err)
	r.checkEvery = time.Hour // only Reload re-reads at first
	addr, _ := serve(t, r)
	client := &tls.Config{RootCAs: p.Pool, ServerName: "one.test"}
	cn, err := dial(addr, client)
	require.NoError(t, err)
	assert.Equal(t, "one.test", cn)

	// Replaced files are not read before the check interval...
	p.Server("srv", "two.test")
	cn, err = dial(addr, client)
	require.NoError(t, err)
	assert.Equal(t, "one.test", cn)
	// ...but at once on Reload (SIGHUP).
	require.NoError(t, r.Reload())
	cn, err = dial(addr, &tls.Config{RootCAs: p.Pool, ServerName: "two.test"})
	require.NoError(t, err)
	assert.Equal(t, "two.test", cn)

	// With the check due, a changed file is picked up by the next handshake.
	r.mu.Lock()
	r.checkEvery = 0
	r.mu.Unlock()
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	p.Server("srv", "three.test")
	cn, err = dial(addr, &tls.Config{RootCAs: p.Pool, ServerName: "three.test"})
	require.NoError(t, err)
	assert.Equal(t, "three.test", cn)

	// A broken replacement keeps the previous certificate.
	require.NoError(t, os.WriteFile(cert, []byte("garbage"), 0o600))
	require.ErrorContains(t, r.Reload(), "storage.tls: load certificate")
	cn, err = dial(addr, &tls.Config{RootCAs: p.Pool, ServerName: "three.test"})
	require.NoError(t, err)
	assert.Equal(t, "three.test", cn)
}

func TestMutualTLS(t *testing.T) {
	p := tlsconftest.New(t)
	cert, key := p.Server("srv", "srv.test")
	r, err := New("collector.tls", Config{CertFile: cert, KeyFile: key, ClientCAFile: p.CAFile}, nil)
	require.NoError(t, err)
	addr, errc := serve(t, r)

	_, err = dial(addr, &tls.Config{RootCAs: p.Pool, ServerName: "srv.test"})
	require.Error(t, err, "no client certificate")
	require.Error(t, <-errc)

	ccert, ckey := p.Client("agent", "r1")
	kp, err := tls.LoadX509KeyPair(ccert, ckey)
	require.NoError(t, err)
	_, err = dial(addr, &tls.Config{RootCAs: p.Pool, ServerName: "srv.test", Certificates: []tls.Certificate{kp}})
	require.NoError(t, err)
	require.NoError(t, <-errc)

	// A certificate from another CA is refused.
	other := tlsconftest.New(t)
	ocert, okey := other.Client("agent", "r1")
	okp, err := tls.LoadX509KeyPair(ocert, okey)
	require.NoError(t, err)
	_, err = dial(addr, &tls.Config{RootCAs: p.Pool, ServerName: "srv.test", Certificates: []tls.Certificate{okp}})
	require.Error(t, err)
	require.Error(t, <-errc)
}

func TestValidate(t *testing.T) {
	assert.Empty(t, Config{}.Validate("x.tls"))
	assert.Empty(t, Config{CertFile: "c", KeyFile: "k"}.Validate("x.tls"))
	assert.Equal(t, ClientAuthRequire, Config{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}.Mode())
	errs := errors.Join(Config{CertFile: "c", ClientAuth: "maybe"}.Validate("x.tls")...)
	require.Error(t, errs)
	assert.ErrorContains(t, errs, "x.tls.cert_file and x.tls.key_file: set both or neither")
	assert.ErrorContains(t, errs, `x.tls.client_auth: "maybe", want none, request or require`)
	assert.ErrorContains(t, errors.Join(Config{CertFile: "c", KeyFile: "k", ClientAuth: "require"}.Validate("x.tls")...),
		"x.tls.client_ca_file: must be set when x.tls.client_auth is require")
	assert.ErrorContains(t, errors.Join(Config{ClientCAFile: "ca"}.Validate("x.tls")...), "without cert_file")

	_, err := New("x.tls", Config{CertFile: "/nonexistent/c", KeyFile: "/nonexistent/k"}, nil)
	require.ErrorContains(t, err, "x.tls: load certificate")
}
