// Package tlsconf is the server-side TLS block every clt-storage port shares
// (tls: {cert_file, key_file, client_ca_file, client_auth}) and the
// crypto/tls configuration built from it, with certificate reload without a
// restart: the files are re-read when they change (checked at most every
// few seconds, during handshakes) or when [Reloader.Reload] is called (the
// binaries call it on SIGHUP). A reload that fails keeps serving the
// previous certificate and reports the error.
//
// It imports no component package, so every component may import it.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Client authentication modes (client_auth).
const (
	ClientAuthNone    = "none"    // no client certificate asked for
	ClientAuthRequest = "request" // asked for; verified against client_ca_file when one is sent
	ClientAuthRequire = "require" // mutual TLS: a certificate signed by client_ca_file is required
)

// DefaultCheckInterval is how often a handshake may look at the files'
// modification times.
const DefaultCheckInterval = 5 * time.Second

// Config is the tls block of one listening port. An empty block (no
// cert_file) is plaintext.
type Config struct {
	// CertFile and KeyFile are the server certificate chain and its key (PEM).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile verifies client certificates (PEM). Setting it alone
	// makes client_auth default to require.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none, request or require; empty means require when
	// client_ca_file is set, else none.
	ClientAuth string `yaml:"client_auth"`
}

// Enabled reports whether the port serves TLS.
func (c Config) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Mode is the effective client_auth.
func (c Config) Mode() string {
	if c.ClientAuth != "" {
		return c.ClientAuth
	}
	if c.ClientCAFile != "" {
		return ClientAuthRequire
	}
	return ClientAuthNone
}

// Validate reports every problem, each naming its YAML key under key (e.g.
// "storage.tls"). Files are read by [New], not here.
func (c Config) Validate(key string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if (c.CertFile == "") != (c.KeyFile == "") {
		add("%s.cert_file and %s.key_file: set both or neither", key, key)
	}
	if !c.Enabled() && (c.ClientCAFile != "" || c.ClientAuth != "") {
		add("%s: client_ca_file or client_auth set without cert_file and key_file", key)
	}
	switch c.Mode() {
	case ClientAuthNone:
	case ClientAuthRequest, ClientAuthRequire:
		// An unverified client certificate identifies nobody.
		if c.ClientCAFile == "" {
			add("%s.client_ca_file: must be set when %s.client_auth is %s", key, key, c.Mode())
		}
	default:
		add("%s.client_auth: %q, want none, request or require", key, c.ClientAuth)
	}
	return errs
}

// Reloader serves the current certificate and client CA pool of one Config.
type Reloader struct {
	cfg    Config
	key    string
	log    *slog.Logger
	protos []string

	mu        sync.Mutex
	cert      *tls.Certificate
	pool      *x509.CertPool
	stamps    []stamp
	lastCheck time.Time
	// checkEvery bounds how often a handshake stats the files; now is the
	// clock. Tests shorten and replace them.
	checkEvery time.Duration
	now        func() time.Time
}

type stamp struct {
	mod  time.Time
	size int64
}

// New loads cfg's files (an error names key and the file) and returns a
// Reloader. nextProtos are the ALPN protocols of every handshake ("h2" for
// gRPC; "h2", "http/1.1" for HTTP). A nil log discards.
func New(key string, cfg Config, log *slog.Logger, nextProtos ...string) (*Reloader, error) {
	if !cfg.Enabled() {
		return nil, fmt.Errorf("%s: no cert_file", key)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{cfg: cfg, key: key, log: log, protos: nextProtos, checkEvery: DefaultCheckInterval, now: time.Now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload re-reads the files now. On error the previous material stays.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *Reloader) files() []string {
	f := []string{r.cfg.CertFile, r.cfg.KeyFile}
	if r.cfg.ClientCAFile != "" {
		f = append(f, r.cfg.ClientCAFile)
	}
	return f
}

func (r *Reloader) reloadLocked() error {
	stamps := r.statFiles()
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("%s: load certificate: %w", r.key, err)
	}
	var pool *x509.CertPool
	if r.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return fmt.Errorf("%s.client_ca_file: %w", r.key, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s.client_ca_file: %s: no PEM certificates", r.key, r.cfg.ClientCAFile)
		}
	}
	r.cert, r.pool, r.stamps = &cert, pool, stamps
	r.lastCheck = r.now()
	return nil
}

func (r *Reloader) statFiles() []stamp {
	var s []stamp
	for _, f := range r.files() {
		fi, err := os.Stat(f)
		if err != nil {
			s = append(s, stamp{})
			continue
		}
		s = append(s, stamp{mod: fi.ModTime(), size: fi.Size()})
	}
	return s
}

// maybeReload re-reads the files when one changed since the last load.
func (r *Reloader) maybeReload() {
	if r.now().Sub(r.lastCheck) < r.checkEvery {
		return
	}
	r.lastCheck = r.now()
	cur := r.statFiles()
	changed := len(cur) != len(r.stamps)
	for i := range cur {
		if !changed && cur[i] != r.stamps[i] {
			changed = true
		}
	}
	if !changed {
		return
	}
	if err := r.reloadLocked(); err != nil {
		// Files are often replaced one at a time: retry at the next check.
		r.log.Error("tls reload failed, keeping the previous certificate", "key", r.key, "err", err)
		return
	}
	r.log.Info("tls certificate reloaded", "key", r.key, "cert_file", r.cfg.CertFile)
}

// TLSConfig is the configuration to serve with: every handshake gets the
// current certificate and client CA pool.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: r.protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.current() }}
}

func (r *Reloader) current() (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maybeReload()
	if r.cert == nil {
		return nil, errors.New("tlsconf: no certificate loaded")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: r.protos,
		Certificates: []tls.Certificate{*r.cert}, ClientCAs: r.pool}
	switch r.cfg.Mode() {
	case ClientAuthRequire:
		c.ClientAuth = tls.RequireAndVerifyClientCert
	case ClientAuthRequest:
		c.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return c, nil
}
