package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Client is the client side of a TLS connection as both binaries configure
// it (clt-agent's export.tls, clt-storage's upstream.tls): whom to trust,
// which certificate to present, which name to expect.
type Client struct {
	// CAFile verifies the server (PEM); empty: the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate for mutual TLS; both
	// or neither.
	CertFile, KeyFile string
	// ServerName overrides the name verified in the server's certificate.
	ServerName string
	// InsecureSkipVerify accepts any server certificate (tests, bootstrap
	// only: the connection is encrypted but not authenticated).
	InsecureSkipVerify bool
}

// ClientConfig builds the *tls.Config of c (TLS 1.2 or newer). key prefixes
// its errors with the YAML key, e.g. "export.tls".
func ClientConfig(key string, c Client) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: read ca_file: %w", key, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: ca_file %s: no PEM certificates", key, c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: client certificate: %w", key, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
