package agent

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/bpfinsert"
)

func TestParseConfigInsertBlock(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
export: {stdout: true}
insert:
  interfaces: [eth0]
  prefixes: ["fd00:3::/64"]
  ports: [80, 8080]
  hop_slots: 4
  socket_map_pin: /sys/fs/bpf/clt/sockets
`))
	require.NoError(t, err)
	require.NotNil(t, cfg.Insert)
	want := bpfinsert.DefaultConfig()
	want.Interfaces, want.Prefixes, want.Ports, want.HopSlots = []string{"eth0"}, []string{"fd00:3::/64"}, []uint16{80, 8080}, 4
	want.SocketMapPin = bpfinsert.DefaultSocketMapPin
	assert.Equal(t, want, *cfg.Insert, "unset keys keep bpfinsert's defaults")
	require.NoError(t, cfg.Validate())

	cfg, err = ParseConfig([]byte("export: {stdout: true}\n"))
	require.NoError(t, err)
	assert.Nil(t, cfg.Insert, "no block, no inserter")

	cfg, err = ParseConfig([]byte("export: {stdout: true}\ninsert: {ports: [0]}\n"))
	require.NoError(t, err)
	err = cfg.Validate()
	require.Error(t, err)
	for _, s := range []string{"insert: ", "interfaces: at least one", "prefixes: at least one", "ports[0]"} {
		assert.Contains(t, err.Error(), s)
	}

	_, err = ParseConfig([]byte("insert: {interfaces: [eth0], bogus: 1}\n"))
	assert.Error(t, err, "unknown keys inside insert are rejected")
}
