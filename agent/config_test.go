package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/internal/logging"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

func TestDefaultConfigIsValidWithANamespace(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate(), "defaults validate (namespaces may be empty: check reports it)")
	assert.Equal(t, time.Second, c.Aggregation.Window)
	assert.Equal(t, "localhost:7123", c.Export.Collector)
	assert.Equal(t, ":17272", c.Admin.Listen)
	assert.Equal(t, SourceAuto, c.Source.Kind)
}

func TestParseConfigOverridesDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`
agent_id: r1
node_name: porthos
node_id: 2
namespaces:
  - id: 123
  - id: 124
    carrier: tail
  - id: 125
    carrier: oss
    schema_id: 0x777
aggregation:
  window: 250ms
export:
  collector: storage.example:7123
  tls:
    enabled: true
    server_name: storage.example
setup:
  node_id: 2
  node_id_wide: 0x1000002
  namespaces:
    - id: 123
      data: 0x12300002
      schema: {id: 777, data: "0x41424344"}
  interfaces:
    - name: eth0
      id: 21
log:
  format: json
`))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Equal(t, "r1", c.AgentID)
	assert.Equal(t, "porthos", c.NodeName)
	assert.Equal(t, uint32(2), *c.NodeID)
	assert.Equal(t, 250*time.Millisecond, c.Aggregation.Window)
	assert.Equal(t, 65536, c.Aggregation.MaxOpen, "untouched keys keep their default")
	assert.Equal(t, 200*time.Millisecond, c.Export.BatchMaxDelay)
	ns, ok := c.carrierFor(123)
	require.True(t, ok)
	assert.Equal(t, CarrierOSS, ns.Carrier)
	assert.Equal(t, uint32(DefaultSchemaID), *ns.SchemaID)
	ns, _ = c.carrierFor(125)
	assert.Equal(t, uint32(0x777), *ns.SchemaID)
	_, ok = c.carrierFor(9)
	assert.False(t, ok)
	assert.Equal(t, uint64(0x1000002), *c.Setup.NodeIDWide)
	assert.Equal(t, uint32(21), *c.Setup.Interfaces[0].ID)
	assert.Equal(t, "json", c.Log.Format)
	assert.Equal(t, "info", c.Log.Level, "untouched log.level keeps its default")
	assert.Empty(t, c.Deprecations())
}

func TestParseConfigRejectsUnknownKeys(t *testing.T) {
	_, err := ParseConfig([]byte("export:\n  colector: x:1\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "colector")
	_, err = ParseConfig([]byte("log:\n  levle: debug\n"))
	assert.ErrorContains(t, err, "levle")
}

func TestParseConfigEmpty(t *testing.T) {
	c, err := ParseConfig([]byte("\n"))
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
	c, err = ParseConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig(), c)
}

func TestLoadConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.yaml")
	require.NoError(t, os.WriteFile(p, []byte("agent_id: x\n"), 0o600))
	c, err := LoadConfig(p)
	require.NoError(t, err)
	assert.Equal(t, "x", c.AgentID)
	_, err = LoadConfig(filepath.Join(t.TempDir(), "none.yaml"))
	assert.ErrorContains(t, err, "read config")
}

// TestDeprecatedLogLevel: the agent's old top-level log_level key is still
// read (copied to log.level) and reported as deprecated; log.level wins
// when both are written.
func TestDeprecatedLogLevel(t *testing.T) {
	c, err := ParseConfig([]byte("log_level: debug\n"))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Equal(t, "debug", c.Log.Level)
	assert.Equal(t, "text", c.Log.Format)
	require.Len(t, c.Deprecations(), 1)
	assert.Contains(t, c.Deprecations()[0], "log_level is deprecated")

	c, err = ParseConfig([]byte("log_level: debug\nlog:\n  level: info\n"))
	require.NoError(t, err)
	assert.Equal(t, "info", c.Log.Level, "log.level wins, even when it is the default value")
	require.Len(t, c.Deprecations(), 1)
	assert.Contains(t, c.Deprecations()[0], "ignored")

	c, err = ParseConfig([]byte("log_level: loud\n"))
	require.NoError(t, err)
	err = c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "log.level")
	assert.Contains(t, err.Error(), "log_level")

	assert.Empty(t, DefaultConfig().Deprecations())
}

// TestNamespaceIDRange: every 16-bit namespace id is valid (RFC 9197
// reserves none; Linux accepts 0xFFFF), in namespaces and setup.namespaces
// alike; 17 bits are not.
func TestNamespaceIDRange(t *testing.T) {
	c := DefaultConfig()
	c.Namespaces = []NamespaceConfig{{ID: 0}, {ID: 0xFFFF}}
	c.Setup = &SetupConfig{Namespaces: []SetupNamespace{{ID: 0}, {ID: 0xFFFF}}}
	require.NoError(t, c.Validate())
	c.Namespaces = []NamespaceConfig{{ID: 0x10000}}
	c.Setup = &SetupConfig{Namespaces: []SetupNamespace{{ID: 0x10000}}}
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "namespaces[0].id: 65536, want 0..65535")
	assert.Contains(t, err.Error(), "setup.namespaces[0].id: 65536, want 0..65535")
}

func TestValidateReportsEveryProblemByKey(t *testing.T) {
	c := DefaultConfig()
	big := uint32(1 << 24)
	c.NodeID = &big
	wideBig := uint64(1 << 56)
	c.NodeIDWide = &wideBig
	c.NodeName = "r1\xff"
	c.Source.Kind = "pcap"
	c.Source.RingBlockSize = 5000
	c.Namespaces = []NamespaceConfig{{ID: 70000, Carrier: "udp"}, {ID: 1}, {ID: 1, SchemaID: &big}}
	c.Aggregation.Window = -time.Second
	c.Aggregation.MaxOpen = 0
	c.Export.Collector = "nohostport"
	c.Export.BatchMaxRecords = 0
	c.Export.BackoffMax = time.Millisecond
	c.Export.TLS.CertFile = "/nonexistent/cert.pem"
	c.Admin.Listen = "17272"
	c.Log = logging.Config{Level: "loud", Format: "xml"}
	c.LogLevel = "louder"
	c.Setup = &SetupConfig{
		NodeID:     &big,
		Namespaces: []SetupNamespace{{ID: 1, Schema: &SetupSchema{ID: 1, Data: "abc"}}},
		Interfaces: []SetupInterface{{Name: ""}, {Name: "averyveryverylongname"}},
	}
	err := c.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, key := range []string{
		"node_id:", "node_id_wide: 72057594037927936 exceeds 56 bits", "node_name:", "source.kind", "source.ring_block_size", "namespaces[0].id", "namespaces[0].carrier",
		"namespaces[2].id: 1 configured twice", "namespaces[2].schema_id", "aggregation.window", "aggregation.max_open",
		"export.collector", "export.batch_max_records", "export.backoff_max", "export.tls:",
		"export.tls.cert_file and export.tls.key_file", "admin.listen", "log.level", "log.format", "log_level",
		"setup.node_id", "setup.namespaces[0].schema.data", "setup.interfaces[0].name", "setup.interfaces[1].name",
	} {
		assert.Contains(t, msg, key)
	}
}

func TestValidateNeedsAnExporter(t *testing.T) {
	c := DefaultConfig()
	c.Export.Collector = ""
	require.ErrorContains(t, c.Validate(), "neither export.collector nor export.stdout")
	c.Export.Stdout = true
	require.NoError(t, c.Validate())
}

func TestExampleConfigIsValid(t *testing.T) {
	c, err := LoadConfig("deploy/clt-agent.example.yaml")
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	assert.Len(t, c.Namespaces, 1)
	require.NotNil(t, c.Setup)
	assert.Len(t, c.Setup.Interfaces, 2)
	d := DefaultConfig()
	assert.Empty(t, c.Source.Interfaces)
	c.Source.Interfaces = nil
	assert.Equal(t, d.Export, c.Export, "the example documents the export defaults")
	assert.Equal(t, d.Aggregation, c.Aggregation)
	assert.Equal(t, d.Source, c.Source)
}

// TestCarrierNamesAreIOAM6s: the agent's carrier names are kernel/ioam6's.
func TestCarrierNamesAreIOAM6s(t *testing.T) {
	for name, want := range map[string]ioam6.Carrier{CarrierOSS: ioam6.CarrierOSS, CarrierTail: ioam6.CarrierTail, CarrierCLTv1: ioam6.CarrierCLTv1} {
		got, err := ioam6.ParseCarrier(name)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
}
