// Package tlsconftest generates a throw-away PKI for tests at run time (a
// CA, server and client certificates as PEM files in a directory), so no
// key material is committed.
package tlsconftest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is one CA and the files it issued.
type PKI struct {
	Dir    string
	CAFile string
	Pool   *x509.CertPool

	t      testing.TB
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial atomic.Int64
}

// New creates a CA under t.TempDir().
func New(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{t: t, Dir: t.TempDir(), Pool: x509.NewCertPool()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "clt test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(t, err)
	p.ca, err = x509.ParseCertificate(der)
	check(t, err)
	p.caKey = key
	p.serial.Store(1)
	p.Pool.AddCert(p.ca)
	p.CAFile = filepath.Join(p.Dir, "ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

// Server issues a server certificate for dnsName (and 127.0.0.1, ::1) and
// returns its cert and key file paths, named after name.
func (p *PKI) Server(name, dnsName string) (certFile, keyFile string) {
	return p.issue(name, dnsName, x509.ExtKeyUsageServerAuth, []string{dnsName},
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
}

// Client issues a client certificate with common name cn.
func (p *PKI) Client(name, cn string) (certFile, keyFile string) {
	return p.issue(name, cn, x509.ExtKeyUsageClientAuth, nil, nil)
}

func (p *PKI) issue(name, cn string, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (string, string) {
	t := p.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		DNSNames: dns, IPAddresses: ips, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	check(t, err)
	kDER, err := x509.MarshalECPrivateKey(key)
	check(t, err)
	certFile, keyFile := filepath.Join(p.Dir, name+".pem"), filepath.Join(p.Dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kDER)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	// Write then rename, as certificate tooling does, so a concurrent
	// reader never sees half a file.
	tmp := path + ".tmp"
	check(t, os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	check(t, os.Rename(tmp, path))
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
