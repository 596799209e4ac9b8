package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

type testPKI struct {
	dir                       string
	caPool                    *x509.CertPool
	server                    tls.Certificate
	ca, clientCert, clientKey string
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), caPool: x509.NewCertPool()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clt test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p.caPool.AddCert(caCert)
	p.ca = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.ca, "CERTIFICATE", caDER)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) ([]byte, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		return der, key
	}
	sDER, sKey := issue(2, "collector.test", x509.ExtKeyUsageServerAuth, []string{"collector.test"})
	p.server = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey}
	cDER, cKey := issue(3, "r1", x509.ExtKeyUsageClientAuth, nil)
	p.clientCert, p.clientKey = filepath.Join(p.dir, "client.pem"), filepath.Join(p.dir, "client-key.pem")
	writePEM(t, p.clientCert, "CERTIFICATE", cDER)
	kDER, err := x509.MarshalECPrivateKey(cKey)
	require.NoError(t, err)
	writePEM(t, p.clientKey, "EC PRIVATE KEY", kDER)
	return p
}

// TestExporterMutualTLS: the exporter verifies the collector against ca_file
// under server_name and presents its client certificate.
func TestExporterMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	f := &fakeCollector{t: t, stored: map[[2]uint64]*collectorv1.IOAMRecord{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.addr = lis.Addr().String()
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{p.server}, ClientCAs: p.caPool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12,
	})))
	collectorv1.RegisterCollectorServiceServer(srv, fakeService{f: f})
	go srv.Serve(lis) //nolint:errcheck // returns when stopped
	t.Cleanup(srv.Stop)

	cfg := testExportConfig(f.addr)
	cfg.TLS = TLSConfig{Enabled: true, CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "collector.test"}
	full := DefaultConfig()
	full.Export = cfg
	require.NoError(t, full.Validate())
	e, m := startExporter(t, cfg)
	e.Export(mkRecords(3, 1))
	waitFor(t, "records over mTLS", func() bool { return testutil.ToFloat64(m.RecordsExported) == 3 })
	assert.Len(t, f.records(), 3)

	// Without the client certificate the server refuses: nothing is stored,
	// the batch stays queued for retries.
	cfg.TLS.CertFile, cfg.TLS.KeyFile = "", ""
	m2 := NewMetrics()
	e2, err := NewGRPCExporter(cfg, "r2", slog.New(slog.DiscardHandler), m2)
	require.NoError(t, err)
	require.NoError(t, e2.Start(t.Context()))
	e2.Export(mkRecords(2, 2))
	waitFor(t, "failed attempts", func() bool { return testutil.ToFloat64(m2.BatchesSent.WithLabelValues("error")) >= 1 })
	assert.Zero(t, testutil.ToFloat64(m2.RecordsExported))
	require.NoError(t, e2.Close())
	assert.Len(t, f.records(), 3)
}

func TestTransportCredentialsErrors(t *testing.T) {
	_, err := transportCredentials(TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"})
	require.ErrorContains(t, err, "ca_file")
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, []byte("not pem"), 0o600))
	_, err = transportCredentials(TLSConfig{Enabled: true, CAFile: empty})
	require.ErrorContains(t, err, "no PEM certificates")
	_, err = transportCredentials(TLSConfig{Enabled: true, CertFile: empty, KeyFile: empty})
	require.ErrorContains(t, err, "client certificate")
}
