package plugin

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/cross-layer-telemetry/clt/internal/admin"
	"github.com/cross-layer-telemetry/clt/internal/logging"
	"github.com/cross-layer-telemetry/clt/internal/yamlconf"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// Config is the clt-storage configuration file (YAML, snake_case keys; unknown
// keys are errors). Every field has a default in DefaultConfig; a file only
// needs the keys it changes.
type Config struct {
	// Storage is the gRPC server Jaeger's `grpc` storage backend talks to:
	// jaeger.storage.v2 TraceReader + DependencyReader and OTLP TraceService.
	Storage StorageConfig `yaml:"storage"`
	// Collector is the gRPC server agents report IOAM records to.
	Collector CollectorConfig `yaml:"collector"`
	// Admin is the HTTP server for /metrics, /healthz, pprof and purge.
	Admin AdminConfig `yaml:"admin"`
	// Store is the badger persistence (see ioamstore.Config).
	Store ioamstore.Config `yaml:"store"`
	// Upstream, when its endpoint is set, replaces the badger store with a
	// Jaeger remote_storage tier (upstream mode, see UpstreamConfig).
	Upstream UpstreamConfig `yaml:"upstream"`
	// Log configures the process log (stderr), the same block as clt-agent's.
	Log LogConfig `yaml:"log"`
	// Enrich configures what reads add to spans with IOAM records.
	Enrich EnrichConfig `yaml:"enrich"`
	// ShutdownTimeout bounds the graceful drain of in-flight RPCs on SIGTERM;
	// after it, remaining RPCs are cancelled and the store is closed anyway.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Nodes names IOAM nodes for Jaeger's views (routers as services, hop
	// summaries): node id → name. A decimal key is a short node id
	// (net.ipv6.ioam6_id, 24 bits; a decimal above 24 bits is a wide id), a
	// 0x-hex key a wide node id (ioam6_id_wide, 56 bits), as the UI shows
	// them. A configured name wins over the reporter_node_name agents send.
	Nodes map[string]string `yaml:"nodes"`
	// Sidecar applies when a Jaeger v1 host runs clt-storage as its go-plugin
	// (sidecar.go).
	Sidecar SidecarConfig `yaml:"sidecar"`
	// Archive is Jaeger v1's archive storage (v1archive.go).
	Archive ArchiveConfig `yaml:"archive"`
	// MemoryLimitMiB sets the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit, as GOMEMLIMIT does) at start. 0: the
	// store's budget (store.memory_limit_mib) sets it, unless GOMEMLIMIT is
	// set; both 0 leave the runtime's setting.
	MemoryLimitMiB int64 `yaml:"memory_limit_mib"`
}

// PortLimits bound what one gRPC port holds at once.
type PortLimits struct {
	// MaxConcurrentStreams bounds the concurrent RPCs of one client
	// connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// MaxInFlightMiB bounds the memory of write requests (Export, Report,
	// Jaeger v1 span writes: isBudgeted) being processed at once: each
	// reserves its wire size × 16 (decodeCostFactor) before it is decoded;
	// beyond it a write is answered ResourceExhausted with RetryInfo, and
	// clients retry later.
	MaxInFlightMiB int `yaml:"max_in_flight_mib"`
}

// StorageConfig configures the Jaeger-facing gRPC server.
type StorageConfig struct {
	// Listen is host:port, default "127.0.0.1:17271" (loopback only).
	Listen string `yaml:"listen"`
	// TLS and Auth secure the port (storage.tls, storage.auth).
	TLS        TLSConfig  `yaml:"tls"`
	Auth       AuthConfig `yaml:"auth"`
	PortLimits `yaml:",inline"`
	// MaxTraceIDsPerRequest bounds the trace ids of one GetTraces request;
	// more is InvalidArgument.
	MaxTraceIDsPerRequest int `yaml:"max_trace_ids_per_request"`
	// MaxRecordsPerSpan bounds the IOAM records joined to one span on a
	// read (GetTraces, FindTraces, dependencies, router and node searches;
	// 0 = no limit). The rest are counted, not decoded: the span says how
	// many in a warning (plugin.WarnRecordsLimit) and
	// clt_storage_records_not_joined_total counts them.
	MaxRecordsPerSpan int `yaml:"max_records_per_span"`
	// MaxRecvMsgSizeMiB bounds one request, i.e. one OTLP Export batch.
	MaxRecvMsgSizeMiB int `yaml:"max_recv_msg_size_mib"`
	// DefaultSearchDepth is used when a query carries search_depth 0.
	DefaultSearchDepth int `yaml:"default_search_depth"`
	// MaxSearchDepth caps search_depth (larger requests are clamped).
	MaxSearchDepth int `yaml:"max_search_depth"`
	// MaxSpansPerChunk bounds the spans of one streamed TracesData message.
	// Jaeger's client accepts 4 MiB messages; 1000 spans keeps well below.
	// Messages are also cut once they pass 32 KiB (targetChunkBytes).
	MaxSpansPerChunk int `yaml:"max_spans_per_chunk"`
	// V1StreamingWriter advertises the jaeger.storage.v1 streaming writer
	// to Jaeger v1 (served either way). Off by default: Jaeger v1.76 writes
	// OTLP-received spans on streams whose context it cancels after each
	// batch, which loses spans; safe when Jaeger v1 ingests only through its
	// own endpoints (model.proto gRPC, Thrift, Zipkin).
	V1StreamingWriter bool `yaml:"v1_streaming_writer"`
}

// CollectorConfig configures the IOAM collector gRPC server.
type CollectorConfig struct {
	// Listen is host:port, default "127.0.0.1:7123" (the original CLT
	// collector port, loopback only). Empty disables the collector server.
	Listen string `yaml:"listen"`
	// TLS and Auth secure the port (collector.tls, collector.auth).
	TLS        TLSConfig  `yaml:"tls"`
	Auth       AuthConfig `yaml:"auth"`
	PortLimits `yaml:",inline"`
	// MaxRecvMsgSizeMiB bounds one Report request.
	MaxRecvMsgSizeMiB int `yaml:"max_recv_msg_size_mib"`
	// MaxRecordsPerBatch bounds the records of one Report call.
	MaxRecordsPerBatch int `yaml:"max_records_per_batch"`
	// MaxHops bounds the hops of one record. An IOAM option holds at most
	// 244 octets of node data, i.e. 61 hops of the smallest trace type.
	MaxHops int `yaml:"max_hops"`
	// Compat also serves the original CLT agents' APIs on the same port:
	// ioam_trace.IOAMService (IurmanJ/cross-layer-telemetry) and
	// ioam_api.IOAMService (Advanced-Observability/ioam-api, clt branch).
	Compat bool `yaml:"compat"`
	// CompatFlushInterval bounds how long a trace received on an ioam_api
	// stream waits before it is written: those agents keep one stream open
	// for their whole life, so the stream's end cannot be the trigger.
	CompatFlushInterval time.Duration `yaml:"compat_flush_interval"`
	// CompatMaxBatch writes an ioam_api stream's traces as soon as this many
	// are waiting, before the interval.
	CompatMaxBatch int `yaml:"compat_max_batch"`
}

// AdminConfig configures the admin HTTP server: clt-agent's admin block
// (listen, default "127.0.0.1:17270", empty disables it; pprof) plus purge,
// tls and auth.
type AdminConfig struct {
	admin.Config `yaml:",inline"`
	// TLS and Auth secure the port (admin.tls, admin.auth); with auth,
	// /metrics, /debug/pprof/ and /purge need the admin role.
	TLS  TLSConfig  `yaml:"tls"`
	Auth AuthConfig `yaml:"auth"`
	// Purge enables POST /purge, which deletes every span and record. Only
	// for test setups such as Jaeger's conformance suite.
	Purge bool `yaml:"purge"`
}

// EnrichConfig configures read-time enrichment (docs/contracts.md, UI
// naming contract).
type EnrichConfig struct {
	// NetworkSpans adds, to every span with IOAM records, synthetic child
	// spans for the network links it crossed and for its warnings (default
	// true). Off: only the span's own attributes, hop events and warnings.
	NetworkSpans bool `yaml:"network_spans"`
}

// LogConfig configures logging (log: {level, format}), the block both
// binaries share. Default info, text.
type LogConfig = logging.Config

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Storage: StorageConfig{
			Listen:             "127.0.0.1:17271",
			MaxRecvMsgSizeMiB:  64,
			DefaultSearchDepth: 100,
			MaxSearchDepth:     10000,
			MaxSpansPerChunk:   1000,
			PortLimits:         PortLimits{MaxConcurrentStreams: 256, MaxInFlightMiB: 64},
			// Jaeger's UI asks for a handful; 10000 bounds one request's work.
			MaxTraceIDsPerRequest: 10000,
			MaxRecordsPerSpan:     ioamstore.DefaultMaxRecordsPerSpan,
		},
		Collector: CollectorConfig{
			Listen:              "127.0.0.1:7123",
			MaxRecvMsgSizeMiB:   16,
			MaxRecordsPerBatch:  10000,
			MaxHops:             64,
			Compat:              true,
			CompatFlushInterval: time.Second,
			CompatMaxBatch:      256,
			PortLimits:          PortLimits{MaxConcurrentStreams: 256, MaxInFlightMiB: 64},
		},
		Admin:           AdminConfig{Config: admin.Config{Listen: "127.0.0.1:17270"}},
		Store:           ioamstore.DefaultConfig(),
		Upstream:        DefaultUpstreamConfig(),
		Log:             logging.DefaultConfig(),
		Enrich:          EnrichConfig{NetworkSpans: true},
		ShutdownTimeout: 10 * time.Second,
		Archive:         ArchiveConfig{TTL: 30 * 24 * time.Hour},
	}
}

// LoadConfig reads the YAML file at path over [DefaultConfig], like
// [ParseConfig]. It does not validate; call [Config.Validate].
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig decodes YAML over [DefaultConfig]; unknown keys are errors
// that name the key, an empty document is all defaults. It does not
// validate; call [Config.Validate].
func ParseConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	if err := yamlconf.Parse(b, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every problem at once, each naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkAddr := func(key, addr string, required bool) {
		if addr == "" {
			if required {
				add("%s: must be set", key)
			}
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add("%s: %q is not host:port", key, addr)
		}
	}
	checkAddr("storage.listen", c.Storage.Listen, true)
	checkAddr("collector.listen", c.Collector.Listen, false)
	errs = append(errs, c.Admin.Validate("admin")...)
	if c.Storage.MaxRecvMsgSizeMiB < 1 || c.Storage.MaxRecvMsgSizeMiB > 1024 {
		add("storage.max_recv_msg_size_mib: must be in [1, 1024], got %d", c.Storage.MaxRecvMsgSizeMiB)
	}
	if c.Storage.MaxSearchDepth < 1 {
		add("storage.max_search_depth: must be >= 1, got %d", c.Storage.MaxSearchDepth)
	}
	if c.Storage.DefaultSearchDepth < 1 || c.Storage.DefaultSearchDepth > c.Storage.MaxSearchDepth {
		add("storage.default_search_depth: must be in [1, storage.max_search_depth], got %d", c.Storage.DefaultSearchDepth)
	}
	if c.Storage.MaxSpansPerChunk < 1 || c.Storage.MaxSpansPerChunk > 10000 {
		add("storage.max_spans_per_chunk: must be in [1, 10000], got %d", c.Storage.MaxSpansPerChunk)
	}
	if c.Collector.MaxRecvMsgSizeMiB < 1 || c.Collector.MaxRecvMsgSizeMiB > 1024 {
		add("collector.max_recv_msg_size_mib: must be in [1, 1024], got %d", c.Collector.MaxRecvMsgSizeMiB)
	}
	if c.Collector.MaxRecordsPerBatch < 1 {
		add("collector.max_records_per_batch: must be >= 1, got %d", c.Collector.MaxRecordsPerBatch)
	}
	if c.Collector.MaxHops < 1 || c.Collector.MaxHops > 255 {
		add("collector.max_hops: must be in [1, 255], got %d", c.Collector.MaxHops)
	}
	if c.Collector.CompatFlushInterval < time.Millisecond || c.Collector.CompatFlushInterval > time.Minute {
		add("collector.compat_flush_interval: must be in [1ms, 1m], got %s", c.Collector.CompatFlushInterval)
	}
	if c.Collector.CompatMaxBatch < 1 || (c.Collector.MaxRecordsPerBatch >= 1 && c.Collector.CompatMaxBatch > c.Collector.MaxRecordsPerBatch) {
		add("collector.compat_max_batch: must be in [1, collector.max_records_per_batch], got %d", c.Collector.CompatMaxBatch)
	}
	errs = append(errs, c.Upstream.validate()...)
	if c.Upstream.Enabled() && c.Upstream.MaxSendMsgSizeMiB < c.Storage.MaxRecvMsgSizeMiB {
		add("upstream.max_send_msg_size_mib: must be >= storage.max_recv_msg_size_mib (%d), got %d", c.Storage.MaxRecvMsgSizeMiB, c.Upstream.MaxSendMsgSizeMiB)
	}
	for _, e := range validateNodes(c.Nodes) {
		add("nodes: %w", e)
	}
	for _, p := range []struct {
		key    string
		tls    TLSConfig
		auth   AuthConfig
		limits *PortLimits
	}{
		{"storage", c.Storage.TLS, c.Storage.Auth, &c.Storage.PortLimits},
		{"collector", c.Collector.TLS, c.Collector.Auth, &c.Collector.PortLimits},
		{"admin", c.Admin.TLS, c.Admin.Auth, nil},
	} {
		errs = append(errs, p.tls.Validate(p.key+".tls")...)
		errs = append(errs, p.auth.validate(p.key, p.tls)...)
		if p.limits != nil {
			if p.limits.MaxConcurrentStreams < 1 {
				add("%s.max_concurrent_streams: must be >= 1, got %d", p.key, p.limits.MaxConcurrentStreams)
			}
			if p.limits.MaxInFlightMiB < 1 || p.limits.MaxInFlightMiB > 65536 {
				add("%s.max_in_flight_mib: must be in [1, 65536], got %d", p.key, p.limits.MaxInFlightMiB)
			}
		}
	}
	if c.Storage.MaxRecordsPerSpan < 0 {
		add("storage.max_records_per_span: must be >= 0 (0: no limit), got %d", c.Storage.MaxRecordsPerSpan)
	}
	if c.Storage.MaxTraceIDsPerRequest < 1 {
		add("storage.max_trace_ids_per_request: must be >= 1, got %d", c.Storage.MaxTraceIDsPerRequest)
	}
	if c.MemoryLimitMiB < 0 {
		add("memory_limit_mib: must be >= 0 (0 leaves the runtime's limit), got %d", c.MemoryLimitMiB)
	}
	if c.Admin.Listen == "" && c.Admin.Purge {
		add("admin.listen: must be set when admin.purge is enabled")
	}
	errs = append(errs, c.Log.Validate("log")...)
	if c.ShutdownTimeout <= 0 {
		add("shutdown_timeout: must be > 0, got %s", c.ShutdownTimeout)
	}
	c.Archive.validate(add)
	if err := c.Store.Validate(); err != nil {
		// ioamstore names its own keys; prefix them with the section.
		for _, e := range unjoin(err) {
			add("store.%s", e.Error())
		}
	}
	return errors.Join(errs...)
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
