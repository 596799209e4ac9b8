package agent

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

func ptr[T any](v T) *T { return &v }

// TestIntegrationNodeSetupAndCheck: a bare router gets its IOAM identity,
// namespace, schema and interfaces from the setup block; a second run changes
// nothing; check reports the node ready (and not before).
func TestIntegrationNodeSetupAndCheck(t *testing.T) {
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 1}))
	r1 := topo.Node("r1")

	cfg := DefaultConfig()
	cfg.NetNSPath = r1.Path
	cfg.Namespaces = []NamespaceConfig{{ID: 123}}
	cfg.Export.Collector = ""
	cfg.Export.Stdout = true

	var out strings.Builder
	require.ErrorIs(t, Check(t.Context(), cfg, &out), ErrCheckFailed)
	assert.Contains(t, out.String(), "MISSING  IOAM namespace 123")
	assert.Contains(t, out.String(), "MISSING  net.ipv6.ioam6_id is unset")

	cfg.Setup = &SetupConfig{
		NodeID: ptr[uint32](2), NodeIDWide: ptr[uint64](0x1000002),
		Namespaces: []SetupNamespace{{ID: 123, Data: ptr[uint32](0x12300002), DataWide: ptr[uint64](0x1230000000000002),
			Schema: &SetupSchema{ID: 777, Data: "41424344"}}},
		Interfaces: []SetupInterface{{Name: "r1a", ID: ptr[uint32](21), IDWide: ptr[uint32](0x10015)}, {Name: "r1b", ID: ptr[uint32](22)}},
	}
	require.NoError(t, cfg.Validate())
	k, err := openKernel(cfg.NetNSPath)
	require.NoError(t, err)
	defer k.close()
	changed, err := k.setup(t.Context(), cfg.Setup)
	require.NoError(t, err)
	assert.Len(t, changed, 7, "ids, namespace, schema, attach, two interfaces: %q", changed)

	require.NoError(t, r1.Do(func() error {
		id, err := sysctl.Default.NodeID()
		require.NoError(t, err)
		assert.Equal(t, uint32(2), id)
		wide, err := sysctl.Default.WideNodeID()
		require.NoError(t, err)
		assert.Equal(t, uint64(0x1000002), wide)
		ifc, err := sysctl.Default.Interface("r1a")
		require.NoError(t, err)
		assert.Equal(t, sysctl.InterfaceConfig{Enabled: true, ID: 21, WideID: 0x10015}, ifc)
		ifc, err = sysctl.Default.Interface("r1b")
		require.NoError(t, err)
		assert.True(t, ifc.Enabled)
		assert.Equal(t, uint16(22), ifc.ID)
		return nil
	}))
	conn, err := ioam6nl.DialNetNS(r1.NetNS())
	require.NoError(t, err)
	defer conn.Close()
	nss, err := conn.Namespaces(t.Context())
	require.NoError(t, err)
	require.Len(t, nss, 1)
	assert.Equal(t, uint16(123), nss[0].ID)
	assert.Equal(t, uint32(0x12300002), *nss[0].Data)
	require.NotNil(t, nss[0].SchemaID)
	assert.Equal(t, uint32(777), *nss[0].SchemaID)

	changed, err = k.setup(t.Context(), cfg.Setup)
	require.NoError(t, err)
	assert.Empty(t, changed, "setup is idempotent")

	// A changed namespace data is replaced (delete + add), the rest kept.
	cfg.Setup.Namespaces[0].Data = ptr[uint32](0x12300009)
	changed, err = k.setup(t.Context(), cfg.Setup)
	require.NoError(t, err)
	assert.Equal(t, []string{"ioam namespace 123 added", "ioam schema 777 attached to namespace 123"}, changed)

	out.Reset()
	require.NoError(t, Check(t.Context(), cfg, &out), out.String())
	assert.Contains(t, out.String(), "ok       IOAM namespace 123 in the kernel")
	assert.Contains(t, out.String(), "ok       net.ipv6.ioam6_id = 2")
	assert.Contains(t, out.String(), "node ready")
}
