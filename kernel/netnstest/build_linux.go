package netnstest

import "testing"

// Build is New for tests: it calls RequirePrivileged, fails t on error and
// registers Close with t.Cleanup (which runs even when the test fails).
func Build(t testing.TB, spec Spec) *Topology {
	t.Helper()
	RequirePrivileged(t)
	topo, err := New(spec)
	if err != nil {
		t.Fatalf("netnstest: build: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("netnstest: close: %v", err)
		}
	})
	return topo
}
