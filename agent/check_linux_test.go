package agent

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

func TestKernelVersion(t *testing.T) {
	for rel, want := range map[string][3]int{
		"6.18.44-fc-v669":   {6, 18, 44},
		"5.15.0-91-generic": {5, 15, 0},
		"6.9":               {6, 9, 0},
		"7.0.11+":           {7, 0, 11},
		"garbage":           {0, 0, 0},
	} {
		maj, min, pat := kernelVersion(rel)
		assert.Equal(t, want, [3]int{maj, min, pat}, rel)
	}
}

func TestCheckKernelAndCapsPrint(t *testing.T) {
	var b strings.Builder
	c := &checker{w: &b}
	checkKernel(c)
	checkCaps(c, DefaultConfig())
	out := b.String()
	assert.Contains(t, out, "kernel ")
	assert.Contains(t, out, "CAP_NET_ADMIN")
	assert.Contains(t, out, "CAP_NET_RAW")
}

// checkBPFFS names a directory that is not on a bpf filesystem.
func TestCheckBPFFSMissing(t *testing.T) {
	var b strings.Builder
	c := &checker{w: &b}
	checkBPFFS(c, filepath.Join(t.TempDir(), "clt"))
	assert.Equal(t, 1, c.missing)
	assert.Contains(t, b.String(), "is not on a bpf filesystem")
}

// checkBPFFS accepts a directory (missing yet) below a bpf filesystem.
func TestIntegrationCheckBPFFS(t *testing.T) {
	netnstest.RequirePrivileged(t)
	dir := t.TempDir()
	require.NoError(t, unix.Mount("bpf", dir, "bpf", 0, "mode=0700"))
	defer func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }()
	var b strings.Builder
	c := &checker{w: &b}
	checkBPFFS(c, filepath.Join(dir, "clt")) // not created yet
	assert.Zero(t, c.missing, b.String())
	assert.Contains(t, b.String(), "is on a bpf filesystem")
}
