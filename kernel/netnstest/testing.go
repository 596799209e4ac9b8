package netnstest

import (
	"os"
	"testing"
)

// EnvRequirePrivileged makes privileged tests fail instead of skipping.
const EnvRequirePrivileged = "CLT_REQUIRE_PRIVILEGED"

// RequirePrivileged skips t unless it runs as root; with
// CLT_REQUIRE_PRIVILEGED=1 (make test) it fails instead (docs/contracts.md).
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(EnvRequirePrivileged) == "1" {
		t.Fatalf("%s needs root (%s=1)", t.Name(), EnvRequirePrivileged)
	}
	t.Skipf("%s needs root; set %s=1 to fail instead", t.Name(), EnvRequirePrivileged)
}
