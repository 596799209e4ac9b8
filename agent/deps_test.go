package agent

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoStoreDependency keeps the contract of docs/contracts.md: the agent
// and its binary never link ioamstore or badger (tests may use the plugin),
// and reach Linux IOAM only through kernel/... (no netlink library of
// their own: kernel/ioam6nl owns the IOAM6 generic netlink family).
func TestNoStoreDependency(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".", "./cmd/clt-agent").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		assert.NotContains(t, dep, "/ioamstore", "agent depends on %s", dep)
		assert.NotContains(t, dep, "dgraph-io/badger", "agent depends on %s", dep)
		assert.NotContains(t, dep, "clt/plugin", "agent depends on %s", dep)
		assert.NotContains(t, dep, "vishvananda/netlink", "agent depends on %s (use kernel/ioam6nl)", dep)
	}
}
