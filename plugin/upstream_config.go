package plugin

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cross-layer-telemetry/clt/internal/tlsconf"
)

// UpstreamConfig is the `upstream:` block. A non-empty Endpoint switches
// clt-storage to upstream mode: nothing is kept locally (the `store:` block
// is ignored), spans and IOAM records are written to a Jaeger
// `remote_storage` tier and read back from it (docs/contracts.md,
// "Upstream mode"). Empty (the default): the embedded badger store.
type UpstreamConfig struct {
	// Endpoint is the upstream's jaeger.storage.v2 gRPC address (host:port):
	// TraceReader, DependencyReader and health. Jaeger's remote_storage
	// extension serves them with OTLP on the same port.
	Endpoint string `yaml:"endpoint"`
	// OTLPEndpoint is where spans and records are written (OTLP gRPC
	// TraceService/Export). Default: Endpoint.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// TLS secures both connections (same keys as clt-agent's export.tls).
	TLS UpstreamTLSConfig `yaml:"tls"`
	// Auth is the authorization header sent on every upstream call.
	Auth UpstreamAuthConfig `yaml:"auth"`
	// Timeout bounds one upstream call (a write, a read, a search).
	Timeout time.Duration `yaml:"timeout"`
	// MaxRecvMsgSizeMiB bounds one message read from the upstream (one
	// streamed chunk of a trace).
	MaxRecvMsgSizeMiB int `yaml:"max_recv_msg_size_mib"`
	// MaxSendMsgSizeMiB bounds one Export request to the upstream; it must
	// hold the largest batch clt-storage accepts (storage.max_recv_msg_size_mib).
	MaxSendMsgSizeMiB int `yaml:"max_send_msg_size_mib"`
	// Service is the internal service IOAM records are written under (one
	// span per record, inside the record's trace). It is hidden from
	// services, operations and dependencies; applications must not use it.
	Service string `yaml:"service"`
	// RecordTimeSlack widens a search's time window when it runs on the
	// records (ioam.* keys, routers): a record's time is the packets' time
	// seen by the router, not its span's start.
	RecordTimeSlack time.Duration `yaml:"record_time_slack"`
	// Lookback is the time window of searches that have none (router
	// operations, ioam.* searches without bounds).
	Lookback time.Duration `yaml:"lookback"`
	// MaxRecordTraces bounds the traces with records read for one search on
	// records or one dependency graph.
	MaxRecordTraces int `yaml:"max_record_traces"`
	// NodeRefresh is how often the routers and node names are learned from
	// the newest record traces in the upstream (at most MaxRecordTraces, in
	// the Lookback window), so that every replica lists the routers other
	// replicas received records of. 0 disables it (then each replica knows
	// the nodes of the records it received or read).
	NodeRefresh time.Duration `yaml:"node_refresh"`
	// HealthInterval is how often the upstream's health is checked; the
	// result is clt-storage's gRPC health and /healthz.
	HealthInterval time.Duration `yaml:"health_interval"`
	// PurgeURL, when set, is POSTed by clt-storage's POST /purge (admin.purge):
	// the upstream's storage_cleaner extension, for test setups only.
	PurgeURL string `yaml:"purge_url"`
}

// UpstreamTLSConfig is the client side of the upstream's TLS.
type UpstreamTLSConfig struct {
	// Enabled turns TLS on. Default false (plaintext).
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server. Empty: system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mTLS; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate: encrypted but not
	// authenticated (tests only). Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// UpstreamAuthConfig is the credential clt-storage presents to the
// upstream: a bearer token (a proxy in front of the tier, or Jaeger's
// bearer token propagation to Elasticsearch/OpenSearch) or a user name and
// password (Jaeger's basicauth extension on remote_storage). At most one;
// secrets come from a file (re-read on SIGHUP) or an environment variable,
// never from the YAML itself. Requires upstream.tls.enabled.
type UpstreamAuthConfig struct {
	// BearerTokenFile / BearerTokenEnv: `authorization: Bearer <token>`.
	BearerTokenFile string `yaml:"bearer_token_file"`
	BearerTokenEnv  string `yaml:"bearer_token_env"`
	// Username with PasswordFile / PasswordEnv: `authorization: Basic …`.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// Enabled reports whether a credential is configured.
func (a UpstreamAuthConfig) Enabled() bool {
	return a.BearerTokenFile != "" || a.BearerTokenEnv != "" || a.Username != "" || a.PasswordFile != "" || a.PasswordEnv != ""
}

func (a UpstreamAuthConfig) validate(tlsOn bool) []error {
	if !a.Enabled() {
		return nil
	}
	var errs []error
	bearer := a.BearerTokenFile != "" || a.BearerTokenEnv != ""
	basic := a.Username != "" || a.PasswordFile != "" || a.PasswordEnv != ""
	switch {
	case bearer && basic:
		errs = append(errs, errors.New("upstream.auth: a bearer token or a username and password, not both"))
	case bearer && a.BearerTokenFile != "" && a.BearerTokenEnv != "":
		errs = append(errs, errors.New("upstream.auth: bearer_token_file or bearer_token_env, not both"))
	case basic && a.Username == "":
		errs = append(errs, errors.New("upstream.auth.username: must be set with password_file or password_env"))
	case basic && (a.PasswordFile == "") == (a.PasswordEnv == ""):
		errs = append(errs, errors.New("upstream.auth: exactly one of password_file and password_env with username"))
	}
	if !tlsOn {
		// gRPC refuses to send credentials in clear text anyway; say so at start.
		errs = append(errs, errors.New("upstream.auth: needs upstream.tls.enabled (credentials are never sent in clear text)"))
	}
	return errs
}

// DefaultUpstreamConfig returns the `upstream:` defaults (mode off).
func DefaultUpstreamConfig() UpstreamConfig {
	return UpstreamConfig{
		Timeout:           10 * time.Second,
		MaxRecvMsgSizeMiB: 64,
		MaxSendMsgSizeMiB: 64,
		Service:           "clt-ioam",
		RecordTimeSlack:   5 * time.Minute,
		Lookback:          48 * time.Hour,
		MaxRecordTraces:   1000,
		HealthInterval:    5 * time.Second,
		NodeRefresh:       time.Minute,
	}
}

// Enabled reports whether upstream mode is on.
func (c UpstreamConfig) Enabled() bool { return c.Endpoint != "" }

// otlpEndpoint is where writes go.
func (c UpstreamConfig) otlpEndpoint() string {
	if c.OTLPEndpoint != "" {
		return c.OTLPEndpoint
	}
	return c.Endpoint
}

// validate reports every problem of an enabled block, keys prefixed "upstream.".
func (c UpstreamConfig) validate() []error {
	if !c.Enabled() {
		if c.OTLPEndpoint != "" || c.PurgeURL != "" || c.Auth.Enabled() {
			return []error{errors.New("upstream.endpoint: must be set when upstream.otlp_endpoint, upstream.purge_url or upstream.auth is")}
		}
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for key, addr := range map[string]string{"upstream.endpoint": c.Endpoint, "upstream.otlp_endpoint": c.OTLPEndpoint} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("%s: %q is not host:port", key, addr)
		}
	}
	if c.Timeout <= 0 {
		add("upstream.timeout: must be > 0, got %s", c.Timeout)
	}
	if c.MaxRecvMsgSizeMiB < 1 || c.MaxRecvMsgSizeMiB > 1024 {
		add("upstream.max_recv_msg_size_mib: must be in [1, 1024], got %d", c.MaxRecvMsgSizeMiB)
	}
	if c.MaxSendMsgSizeMiB < 1 || c.MaxSendMsgSizeMiB > 1024 {
		add("upstream.max_send_msg_size_mib: must be in [1, 1024], got %d", c.MaxSendMsgSizeMiB)
	}
	if c.Service == "" {
		add("upstream.service: must be set")
	}
	if c.RecordTimeSlack < 0 {
		add("upstream.record_time_slack: must be >= 0, got %s", c.RecordTimeSlack)
	}
	if c.Lookback <= 0 {
		add("upstream.lookback: must be > 0, got %s", c.Lookback)
	}
	if c.MaxRecordTraces < 1 {
		add("upstream.max_record_traces: must be >= 1, got %d", c.MaxRecordTraces)
	}
	if c.NodeRefresh < 0 {
		add("upstream.node_refresh: must be >= 0, got %s", c.NodeRefresh)
	}
	if c.HealthInterval <= 0 {
		add("upstream.health_interval: must be > 0, got %s", c.HealthInterval)
	}
	if c.PurgeURL != "" {
		if u, err := url.Parse(c.PurgeURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("upstream.purge_url: %q is not an http(s) URL", c.PurgeURL)
		}
	}
	t := c.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		add("upstream.tls: ca_file, cert_file, key_file, server_name or insecure_skip_verify set but upstream.tls.enabled is false")
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		add("upstream.tls: insecure_skip_verify ignores ca_file; set one of them")
	}
	errs = append(errs, c.Auth.validate(t.Enabled)...)
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("upstream.tls.cert_file and upstream.tls.key_file: set both or neither")
	}
	return errs
}

// credentials builds the transport credentials of the upstream connections.
func (t UpstreamTLSConfig) credentials() (credentials.TransportCredentials, error) {
	if !t.Enabled {
		return insecure.NewCredentials(), nil
	}
	tc, err := tlsconf.ClientConfig("upstream.tls", tlsconf.Client{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify})
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(tc), nil
}
