package netnstest

import (
	"fmt"
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
	SkipUnavailable(t, "needs root")
}

// SkipUnavailable skips t because the host lacks what it tests (root, the
// ioam6_events group, IPv6 loopback); with CLT_REQUIRE_PRIVILEGED=1 it fails
// instead, so CI never passes a test that did not run.
func SkipUnavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvRequirePrivileged) == "1" {
		t.Fatalf("%s: %s (%s=1)", t.Name(), msg, EnvRequirePrivileged)
	}
	t.Skipf("%s: %s; set %s=1 to fail instead", t.Name(), msg, EnvRequirePrivileged)
}
