package admin

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSharedPackagesImportNoComponent: the packages both binaries share
// (docs/contracts.md "Shared internal packages") import no component, so
// that agent, plugin and ioamstore may all import them without a cycle or
// the agent linking the store. The kernel's shared framing is stdlib only.
func TestSharedPackagesImportNoComponent(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".", "../logging", "../yamlconf", "../tlsconf", "../../kernel/internal/netnsutil").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"clt/agent", "clt/plugin", "clt/ioamstore", "clt/examples", "clt/api", "dgraph-io/badger", "google.golang.org/grpc"} {
			assert.NotContains(t, dep, banned, "shared package depends on %s", dep)
		}
	}
	out, err = exec.Command(goBin, "list", "-f", `{{join .Imports "\n"}}`, "../../kernel/internal/nlmsg").Output()
	require.NoError(t, err)
	for _, imp := range strings.Fields(string(out)) {
		assert.NotContains(t, imp, ".", "kernel/internal/nlmsg imports %s: stdlib only", imp)
	}
}
