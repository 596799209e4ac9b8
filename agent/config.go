package agent

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/cross-layer-telemetry/clt/internal/admin"
	"github.com/cross-layer-telemetry/clt/internal/logging"
	"github.com/cross-layer-telemetry/clt/internal/yamlconf"
	"github.com/cross-layer-telemetry/clt/kernel/bpfinsert"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Source kinds accepted by source.kind.
const (
	SourceAuto    = "auto"
	SourceNetlink = "netlink"
	SourceCapture = "capture"
)

// Carrier names accepted by namespaces[].carrier: the names of
// kernel/ioam6's carriers, which Validate parses with ioam6.ParseCarrier.
const (
	CarrierOSS   = "oss"
	CarrierTail  = "tail"
	CarrierCLTv1 = "clt-v1"
)

// DefaultSchemaID is the Opaque State Snapshot schema id of the "oss" carrier.
const DefaultSchemaID = ioam6.DefaultSchemaID

// Config is clt-agent's YAML configuration. Every field has a default from
// [DefaultConfig]; a YAML file only needs the keys it changes.
type Config struct {
	// AgentID identifies this agent to the collector (agent_id). Default: the host name.
	AgentID string `yaml:"agent_id"`
	// NodeName names this node in every record (node_name,
	// reporter_node_name): clt-storage shows routers by it. Default: the
	// host name. Valid UTF-8, at most 255 bytes.
	NodeName string `yaml:"node_name"`
	// NodeID is this node's 24-bit IOAM node id (node_id), used to tell whether
	// this node wrote its own hop. Default (null): setup.node_id when set, else
	// the net.ipv6.ioam6_id sysctl read at start.
	NodeID *uint32 `yaml:"node_id"`
	// NodeIDWide is this node's 56-bit wide node id (node_id_wide), used
	// instead of node_id for trace types with the wide node id (bit 8) and
	// not the short one (bit 0). Default (null): setup.node_id_wide when
	// set, else the net.ipv6.ioam6_id_wide sysctl read at start.
	NodeIDWide *uint64 `yaml:"node_id_wide"`
	// NetNSPath runs the kernel side (node setup, sysctls, event or capture
	// socket) in another network namespace, e.g. /var/run/netns/r1
	// (netns_path). Export and admin stay in the agent's own namespace.
	// Default "": the agent's namespace.
	NetNSPath string `yaml:"netns_path"`
	// Source selects where IOAM traces come from (source).
	Source SourceConfig `yaml:"source"`
	// Namespaces maps IOAM namespace ids to the trace-context carrier that
	// delivers the trace and span ids (namespaces). Events of other namespaces
	// are counted as malformed with reason "unconfigured_namespace".
	Namespaces []NamespaceConfig `yaml:"namespaces"`
	// Aggregation controls the per-(trace, span, path) window (aggregation).
	Aggregation AggregationConfig `yaml:"aggregation"`
	// Export controls where records go (export).
	Export ExportConfig `yaml:"export"`
	// Admin is the admin HTTP listener (admin), the same block as
	// clt-storage's.
	Admin AdminConfig `yaml:"admin"`
	// Setup, when present, is applied to the kernel at start (setup).
	Setup *SetupConfig `yaml:"setup"`
	// Insert, when present, attaches the eBPF inserter of kernel/bpfinsert
	// at start and detaches it at stop (insert): on a sending host, the
	// HTTP/1.x requests of any application that carry a sampled W3C
	// traceparent get the IOAM header. Unset keys take
	// bpfinsert.DefaultConfig's values.
	Insert *bpfinsert.Config `yaml:"insert"`
	// Log configures the process log on stderr (log: {level, format}), the
	// same block as clt-storage's. Default info, text.
	Log logging.Config `yaml:"log"`
	// LogLevel is the deprecated spelling of log.level (log_level), still
	// read: [ParseConfig] copies it to Log.Level unless log.level is set,
	// and [Config.Deprecations] reports it. Empty in [DefaultConfig].
	LogLevel string `yaml:"log_level,omitempty"`

	// logLevelIgnored: the file set both log_level and log.level.
	logLevelIgnored bool
}

// SourceConfig selects and tunes the event source.
type SourceConfig struct {
	// Kind is auto (netlink when the kernel has the ioam6_events group, else
	// capture), netlink or capture (source.kind). Default auto.
	Kind string `yaml:"kind"`
	// ReceiveBuffer is the netlink socket receive buffer in bytes
	// (source.receive_buffer, SO_RCVBUFFORCE). Default 8 MiB.
	ReceiveBuffer int `yaml:"receive_buffer"`
	// BatchWait is how long the netlink source pauses after a read that
	// drained the socket, so that events accumulate and are read in batches
	// (source.batch_wait): one wake-up per batch instead of per packet.
	// Default 5ms (the pause is what keeps the CPU per event down; figures in
	// docs/benchmarks.md). 0 reads every event as it arrives. The
	// receive buffer must hold what arrives meanwhile: about 0.8 KiB per
	// queued event (measured), i.e. 8 MiB ≈ 20k events (the kernel doubles
	// the value).
	BatchWait time.Duration `yaml:"batch_wait"`
	// Interfaces limits packet capture to these interfaces
	// (source.interfaces). Empty: every interface. Only packets the node sends
	// (PACKET_OUTGOING) are read, so the local hop is included.
	Interfaces []string `yaml:"interfaces"`
	// RingBlockSize and RingBlocks size the TPACKET_V3 capture ring
	// (source.ring_block_size, source.ring_blocks). Default 256 KiB x 32
	// (8 MiB, resident). A block is handed over when full or 10 ms old, so
	// at low rates the ring holds about ring_blocks x 10 ms of traffic:
	// prefer more, smaller blocks.
	RingBlockSize int `yaml:"ring_block_size"`
	RingBlocks    int `yaml:"ring_blocks"`
}

// NamespaceConfig is the decoding rule of one IOAM namespace.
type NamespaceConfig struct {
	// ID is the IOAM namespace id (namespaces[].id), 0..65535.
	ID uint32 `yaml:"id"`
	// Carrier is oss, tail or clt-v1 (namespaces[].carrier). Default oss.
	Carrier string `yaml:"carrier"`
	// SchemaID is the snapshot schema id of the oss carrier
	// (namespaces[].schema_id, 24 bits). Default 0x000C17.
	SchemaID *uint32 `yaml:"schema_id"`
}

// AggregationConfig bounds the aggregation stage.
type AggregationConfig struct {
	// Window is how long an aggregate collects packets before it is flushed
	// (aggregation.window). Default 1s. 0 exports every packet as its own record.
	Window time.Duration `yaml:"window"`
	// MaxOpen caps the open aggregates (aggregation.max_open). When full, the
	// oldest is flushed early (evicted, counted, not lost). Default 65536.
	MaxOpen int `yaml:"max_open"`
}

// ExportConfig controls record export.
type ExportConfig struct {
	// Collector is the clt-storage collector address host:port
	// (export.collector). Default localhost:7123. Empty disables gRPC export.
	Collector string `yaml:"collector"`
	// Stdout also writes every record as one JSON line on standard output
	// (export.stdout). Default false.
	Stdout bool `yaml:"stdout"`
	// BatchMaxRecords and BatchMaxDelay bound a batch (export.batch_max_records,
	// export.batch_max_delay). Defaults 1000 and 200ms.
	BatchMaxRecords int           `yaml:"batch_max_records"`
	BatchMaxDelay   time.Duration `yaml:"batch_max_delay"`
	// QueueMaxBatches bounds the batches waiting to be sent
	// (export.queue_max_batches). When full, the oldest waiting batch is dropped
	// and its records counted as dropped (reason queue_full). Default 1024.
	QueueMaxBatches int `yaml:"queue_max_batches"`
	// Timeout bounds one Report call (export.timeout). Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// BackoffInitial and BackoffMax bound the retry delay, which doubles per
	// failed attempt with ±50 % jitter (export.backoff_initial,
	// export.backoff_max). Defaults 100ms and 10s.
	BackoffInitial time.Duration `yaml:"backoff_initial"`
	BackoffMax     time.Duration `yaml:"backoff_max"`
	// ShutdownTimeout bounds the final flush at shutdown
	// (export.shutdown_timeout). Default 5s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TLS secures the collector connection (export.tls).
	TLS TLSConfig `yaml:"tls"`
	// TokenFile holds a bearer token sent with every Report
	// (export.token_file), for a collector with collector.auth tokens.
	// Needs export.tls.enabled: a token is never sent in plaintext.
	TokenFile string `yaml:"token_file"`
}

// TLSConfig is the client side of the collector's TLS.
type TLSConfig struct {
	// Enabled turns TLS on (export.tls.enabled). Default false (plaintext).
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the server (export.tls.ca_file). Empty: system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mTLS
	// (export.tls.cert_file, export.tls.key_file); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate
	// (export.tls.server_name).
	ServerName string `yaml:"server_name"`
}

// AdminConfig is the admin HTTP listener (admin.listen, default :17272,
// empty disables it; admin.pprof, default false): /metrics, /healthz and
// optionally /debug/pprof/, served by the package both binaries share.
type AdminConfig = admin.Config

// SetupConfig is node configuration applied idempotently at start through the
// kernel packages (net.ipv6 sysctls and IOAM6 generic netlink).
type SetupConfig struct {
	// NodeID sets net.ipv6.ioam6_id (setup.node_id, 24 bits).
	NodeID *uint32 `yaml:"node_id"`
	// NodeIDWide sets net.ipv6.ioam6_id_wide (setup.node_id_wide, 56 bits).
	NodeIDWide *uint64 `yaml:"node_id_wide"`
	// Namespaces are created (or updated) in the kernel (setup.namespaces).
	Namespaces []SetupNamespace `yaml:"namespaces"`
	// Interfaces get ioam6_enabled and their ids (setup.interfaces).
	Interfaces []SetupInterface `yaml:"interfaces"`
}

// SetupNamespace is one kernel IOAM namespace.
type SetupNamespace struct {
	// ID is the namespace id (setup.namespaces[].id).
	ID uint32 `yaml:"id"`
	// Data and DataWide are the namespace data written by bits 5 and 10
	// (setup.namespaces[].data, .data_wide). Default: unset (all ones).
	Data     *uint32 `yaml:"data"`
	DataWide *uint64 `yaml:"data_wide"`
	// Schema, when set, is attached to the namespace (setup.namespaces[].schema).
	Schema *SetupSchema `yaml:"schema"`
}

// SetupSchema is an IOAM opaque-state-snapshot schema.
type SetupSchema struct {
	// ID is the 24-bit schema id (setup.namespaces[].schema.id).
	ID uint32 `yaml:"id"`
	// Data is the snapshot the node writes, as hex (setup.namespaces[].schema.data),
	// a multiple of 4 bytes, at most 244.
	Data string `yaml:"data"`
}

// SetupInterface is the IOAM configuration of one interface.
type SetupInterface struct {
	// Name is the interface name (setup.interfaces[].name).
	Name string `yaml:"name"`
	// Enabled sets ioam6_enabled (setup.interfaces[].enabled). Default true.
	Enabled *bool `yaml:"enabled"`
	// ID and IDWide set the interface ids (setup.interfaces[].id, .id_wide).
	ID     *uint32 `yaml:"id"`
	IDWide *uint32 `yaml:"id_wide"`
}

// DefaultConfig returns the configuration used for every key a file leaves out.
func DefaultConfig() Config {
	return Config{
		Source: SourceConfig{
			Kind:          SourceAuto,
			ReceiveBuffer: 8 << 20,
			BatchWait:     5 * time.Millisecond,
			RingBlockSize: 256 << 10,
			RingBlocks:    32,
		},
		Aggregation: AggregationConfig{Window: time.Second, MaxOpen: 65536},
		Export: ExportConfig{
			Collector:       "localhost:7123",
			BatchMaxRecords: 1000,
			BatchMaxDelay:   200 * time.Millisecond,
			QueueMaxBatches: 1024,
			Timeout:         5 * time.Second,
			BackoffInitial:  100 * time.Millisecond,
			BackoffMax:      10 * time.Second,
			ShutdownTimeout: 5 * time.Second,
		},
		Admin: AdminConfig{Listen: ":17272"},
		Log:   logging.DefaultConfig(),
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
// that name the key, an empty document is all defaults. The deprecated
// log_level key is copied to log.level unless the document sets log.level
// too. It does not validate; call [Config.Validate].
func ParseConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	ins := bpfinsert.DefaultConfig()
	cfg.Insert = &ins // the block's defaults; nil again below when absent
	if err := yamlconf.Parse(b, &cfg); err != nil {
		return Config{}, err
	}
	var probeInsert struct {
		Insert *yaml.Node `yaml:"insert"`
	}
	if err := yaml.Unmarshal(b, &probeInsert); err != nil {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if probeInsert.Insert == nil || probeInsert.Insert.Tag == "!!null" {
		cfg.Insert = nil
	}
	if cfg.LogLevel != "" {
		// Whether log.level was written cannot be told from the decoded
		// value (it may equal the default): look at the document itself.
		var probe struct {
			Log struct {
				Level *string `yaml:"level"`
			} `yaml:"log"`
		}
		if err := yaml.Unmarshal(b, &probe); err != nil {
			return Config{}, fmt.Errorf("parse config: %w", err)
		}
		if probe.Log.Level == nil {
			cfg.Log.Level = cfg.LogLevel
		} else {
			cfg.logLevelIgnored = true
		}
	}
	return cfg, nil
}

// Deprecations lists the deprecated keys the configuration used, one
// sentence each, for main to log as warnings once the logger exists.
func (c Config) Deprecations() []string {
	switch {
	case c.LogLevel == "":
		return nil
	case c.logLevelIgnored:
		return []string{fmt.Sprintf("log_level (%q) is deprecated and ignored because log.level is set; remove it", c.LogLevel)}
	default:
		return []string{fmt.Sprintf("log_level is deprecated; write log: {level: %s} instead", c.LogLevel)}
	}
}

const (
	maxNodeID     = 1<<24 - 1
	maxNodeIDWide = 1<<56 - 1
	// Every 16-bit value is a namespace id: RFC 9197 §4.3 and its IANA
	// registry reserve none (0x0000 is the default namespace, 0x8000-0xFFFF
	// private use) and Linux accepts 0xFFFF. clt-storage's collector
	// applies the same rule to records.
	maxNamespace  = 0xFFFF
	maxIfID       = 0xFFFF
	maxSchemaData = 244 // 255 - the snapshot header, kept a multiple of 4
	maxNodeName   = 255
)

// Validate reports every problem of the configuration at once, naming the YAML key.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if c.NodeID != nil && *c.NodeID > maxNodeID {
		add("node_id: %d exceeds 24 bits", *c.NodeID)
	}
	if len(c.NodeName) > maxNodeName || !utf8.ValidString(c.NodeName) {
		add("node_name: %q, want valid UTF-8 of at most %d bytes", c.NodeName, maxNodeName)
	}
	if c.NodeIDWide != nil && *c.NodeIDWide > maxNodeIDWide {
		add("node_id_wide: %d exceeds 56 bits", *c.NodeIDWide)
	}
	switch c.Source.Kind {
	case SourceAuto, SourceNetlink, SourceCapture:
	default:
		add("source.kind: %q, want auto, netlink or capture", c.Source.Kind)
	}
	if c.Source.ReceiveBuffer < 4096 {
		add("source.receive_buffer: %d, want >= 4096", c.Source.ReceiveBuffer)
	}
	if c.Source.BatchWait < 0 || c.Source.BatchWait > time.Second {
		add("source.batch_wait: %s, want 0..1s", c.Source.BatchWait)
	}
	if c.Source.RingBlockSize < 4096 || c.Source.RingBlockSize&(c.Source.RingBlockSize-1) != 0 {
		add("source.ring_block_size: %d, want a power of two >= 4096", c.Source.RingBlockSize)
	}
	if c.Source.RingBlocks < 1 || c.Source.RingBlocks > 1024 {
		add("source.ring_blocks: %d, want 1..1024", c.Source.RingBlocks)
	}
	seen := map[uint32]bool{}
	for i, ns := range c.Namespaces {
		if ns.ID > maxNamespace {
			add("namespaces[%d].id: %d, want 0..%d", i, ns.ID, maxNamespace)
		}
		if seen[ns.ID] {
			add("namespaces[%d].id: %d configured twice", i, ns.ID)
		}
		seen[ns.ID] = true
		if ns.Carrier != "" {
			if _, err := ioam6.ParseCarrier(ns.Carrier); err != nil {
				add("namespaces[%d].carrier: %w", i, err)
			}
		}
		if ns.SchemaID != nil && *ns.SchemaID > maxNodeID {
			add("namespaces[%d].schema_id: %#x exceeds 24 bits", i, *ns.SchemaID)
		}
	}
	if c.Aggregation.Window < 0 || c.Aggregation.Window > time.Minute {
		add("aggregation.window: %s, want 0..1m", c.Aggregation.Window)
	}
	if c.Aggregation.MaxOpen < 1 {
		add("aggregation.max_open: %d, want >= 1", c.Aggregation.MaxOpen)
	}
	errs = append(errs, c.Export.validate()...)
	errs = append(errs, c.Admin.Validate("admin")...)
	if c.Insert != nil {
		if err := c.Insert.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("insert: %w", err))
		}
	}
	if c.Setup != nil {
		errs = append(errs, c.Setup.validate()...)
	}
	errs = append(errs, c.Log.Validate("log")...)
	if c.LogLevel != "" && len(logging.Config{Level: c.LogLevel, Format: "text"}.Validate("log")) > 0 {
		add("log_level: %q, want debug, info, warn or error (deprecated: use log.level)", c.LogLevel)
	}
	return errors.Join(errs...)
}

func (e ExportConfig) validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if e.Collector == "" && !e.Stdout {
		add("export: neither export.collector nor export.stdout is set")
	}
	if e.Collector != "" {
		if _, _, err := net.SplitHostPort(e.Collector); err != nil {
			add("export.collector: %q: %w", e.Collector, err)
		}
	}
	if e.BatchMaxRecords < 1 || e.BatchMaxRecords > 100000 {
		add("export.batch_max_records: %d, want 1..100000", e.BatchMaxRecords)
	}
	if e.BatchMaxDelay <= 0 {
		add("export.batch_max_delay: %s, want > 0", e.BatchMaxDelay)
	}
	if e.QueueMaxBatches < 1 {
		add("export.queue_max_batches: %d, want >= 1", e.QueueMaxBatches)
	}
	if e.Timeout <= 0 {
		add("export.timeout: %s, want > 0", e.Timeout)
	}
	if e.BackoffInitial <= 0 {
		add("export.backoff_initial: %s, want > 0", e.BackoffInitial)
	}
	if e.BackoffMax < e.BackoffInitial {
		add("export.backoff_max: %s, want >= export.backoff_initial (%s)", e.BackoffMax, e.BackoffInitial)
	}
	if e.ShutdownTimeout < 0 {
		add("export.shutdown_timeout: %s, want >= 0", e.ShutdownTimeout)
	}
	t := e.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
		add("export.tls: ca_file, cert_file, key_file or server_name set but export.tls.enabled is false")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("export.tls.cert_file and export.tls.key_file: set both or neither")
	}
	if e.TokenFile != "" {
		if !t.Enabled {
			add("export.token_file: needs export.tls.enabled (a token is never sent in plaintext)")
		} else if _, err := os.Stat(e.TokenFile); err != nil {
			add("export.token_file: %w", err)
		}
	}
	for key, path := range map[string]string{"ca_file": t.CAFile, "cert_file": t.CertFile, "key_file": t.KeyFile} {
		if path == "" || !t.Enabled {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			add("export.tls.%s: %w", key, err)
		}
	}
	return errs
}

func (s SetupConfig) validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.NodeID != nil && *s.NodeID > maxNodeID {
		add("setup.node_id: %d exceeds 24 bits", *s.NodeID)
	}
	if s.NodeIDWide != nil && *s.NodeIDWide > maxNodeIDWide {
		add("setup.node_id_wide: %d exceeds 56 bits", *s.NodeIDWide)
	}
	seen := map[uint32]bool{}
	for i, ns := range s.Namespaces {
		if ns.ID > maxNamespace {
			add("setup.namespaces[%d].id: %d, want 0..%d", i, ns.ID, maxNamespace)
		}
		if seen[ns.ID] {
			add("setup.namespaces[%d].id: %d configured twice", i, ns.ID)
		}
		seen[ns.ID] = true
		if sc := ns.Schema; sc != nil {
			if sc.ID > maxNodeID {
				add("setup.namespaces[%d].schema.id: %#x exceeds 24 bits", i, sc.ID)
			}
			if b, err := decodeHex(sc.Data); err != nil {
				add("setup.namespaces[%d].schema.data: %w", i, err)
			} else if len(b)%4 != 0 || len(b) > maxSchemaData {
				add("setup.namespaces[%d].schema.data: %d bytes, want a multiple of 4, at most %d", i, len(b), maxSchemaData)
			}
		}
	}
	names := map[string]bool{}
	for i, ifc := range s.Interfaces {
		if ifc.Name == "" || len(ifc.Name) >= 16 {
			add("setup.interfaces[%d].name: %q, want 1..15 characters", i, ifc.Name)
		}
		if names[ifc.Name] {
			add("setup.interfaces[%d].name: %q configured twice", i, ifc.Name)
		}
		names[ifc.Name] = true
		if ifc.ID != nil && *ifc.ID > maxIfID {
			add("setup.interfaces[%d].id: %d exceeds 16 bits", i, *ifc.ID)
		}
	}
	return errs
}

// decodeHex accepts hex with an optional 0x prefix.
func decodeHex(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	return hex.DecodeString(s)
}

// carrierFor returns the namespace rule for id, if configured.
func (c Config) carrierFor(id uint16) (NamespaceConfig, bool) {
	for _, ns := range c.Namespaces {
		if ns.ID == uint32(id) {
			if ns.Carrier == "" {
				ns.Carrier = CarrierOSS
			}
			if ns.SchemaID == nil {
				v := uint32(DefaultSchemaID)
				ns.SchemaID = &v
			}
			return ns, true
		}
	}
	return NamespaceConfig{}, false
}
