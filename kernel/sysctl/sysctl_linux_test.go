package sysctl_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// TestIntegrationPerThreadNetNS checks that /proc/sys/net resolves against the
// calling thread's network namespace: a write from a thread that unshared its
// netns must not change the root namespace's value, and must be visible to a
// read from the same thread.
func TestIntegrationPerThreadNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CLT_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("needs root (CLT_REQUIRE_PRIVILEGED=1)")
		}
		t.Skip("needs root")
	}
	s := sysctl.Default
	before, err := s.NodeID()
	require.NoError(t, err)

	type result struct {
		inside uint32
		err    error
	}
	done := make(chan result, 1)
	go func() {
		// The thread stays locked and dies with the goroutine, so its
		// private netns never leaks to other goroutines.
		runtime.LockOSThread()
		var r result
		if r.err = unix.Unshare(unix.CLONE_NEWNET); r.err != nil {
			done <- r
			return
		}
		want := before ^ 0x5A5A5A&0xFFFFFF
		if r.err = s.SetNodeID(want); r.err == nil {
			r.inside, r.err = s.NodeID()
		}
		done <- r
	}()
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, before^0x5A5A5A&0xFFFFFF, r.inside, "read back in the new netns")
	after, err := s.NodeID()
	require.NoError(t, err)
	assert.Equal(t, before, after, "root netns must be unchanged")
}
