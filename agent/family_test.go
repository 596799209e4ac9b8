package agent_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/agent"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// TestOneDialect: clt-agent and clt-storage read the shared blocks the same
// way: the same log and admin keys decode to the same values, the same
// mistakes are rejected with the same key named, and the same functions
// load both files.
func TestOneDialect(t *testing.T) {
	shared := []byte("admin:\n  listen: 127.0.0.1:9\n  pprof: true\nlog:\n  level: warn\n  format: json\n")
	a, err := agent.ParseConfig(shared)
	require.NoError(t, err)
	s, err := plugin.ParseConfig(shared)
	require.NoError(t, err)
	require.NoError(t, a.Validate())
	require.NoError(t, s.Validate())
	assert.Equal(t, a.Log, s.Log)
	assert.Equal(t, a.Admin, s.Admin.Config)

	for _, bad := range []struct{ doc, key string }{
		{"log:\n  levle: warn\n", "levle"},
		{"admin:\n  listn: x\n", "listn"},
		{"bogus: 1\n", "bogus"},
	} {
		_, aerr := agent.ParseConfig([]byte(bad.doc))
		_, serr := plugin.ParseConfig([]byte(bad.doc))
		require.Error(t, aerr, bad.doc)
		require.Error(t, serr, bad.doc)
		assert.Contains(t, aerr.Error(), bad.key)
		assert.Contains(t, serr.Error(), bad.key)
	}

	invalid := []byte("admin:\n  listen: nohostport\nlog:\n  level: loud\n  format: xml\n")
	a, err = agent.ParseConfig(invalid)
	require.NoError(t, err)
	s, err = plugin.ParseConfig(invalid)
	require.NoError(t, err)
	aerr, serr := a.Validate(), s.Validate()
	for _, msg := range []string{`admin.listen: "nohostport" is not host:port`, `log.level: "loud"`, `log.format: "xml"`} {
		assert.Contains(t, aerr.Error(), msg)
		assert.Contains(t, serr.Error(), msg)
	}

	_, aerr = agent.LoadConfig("/nonexistent/clt.yaml")
	_, serr = plugin.LoadConfig("/nonexistent/clt.yaml")
	assert.ErrorContains(t, aerr, "read config")
	assert.ErrorContains(t, serr, "read config")
}
