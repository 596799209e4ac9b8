package sysctl_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// fakeTree builds a minimal /proc/sys with kernel defaults for ifnames.
func fakeTree(t *testing.T, ifnames ...string) *sysctl.Sysctl {
	t.Helper()
	root := t.TempDir()
	write := func(rel, v string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(v+"\n"), 0o644))
	}
	write("net/ipv6/ioam6_id", "16777215")
	write("net/ipv6/ioam6_id_wide", "72057594037927935")
	write("net/ipv6/max_hbh_opts_number", "8")
	for _, ifn := range ifnames {
		write("net/ipv6/conf/"+ifn+"/ioam6_enabled", "0")
		write("net/ipv6/conf/"+ifn+"/ioam6_id", "65535")
		write("net/ipv6/conf/"+ifn+"/ioam6_id_wide", "4294967295")
		write("net/ipv6/conf/"+ifn+"/forwarding", "0")
	}
	return &sysctl.Sysctl{Root: root}
}

func TestDefaultsAndRoundTrip(t *testing.T) {
	s := fakeTree(t, "eth0", "eth0.100")
	id, err := s.NodeID()
	require.NoError(t, err)
	assert.EqualValues(t, sysctl.DefaultNodeID, id)
	wide, err := s.WideNodeID()
	require.NoError(t, err)
	assert.EqualValues(t, uint64(sysctl.DefaultWideNodeID), wide)

	require.NoError(t, s.SetNodeID(0xABCDEF))
	require.NoError(t, s.SetWideNodeID(0x00FFEEDDCCBBAA99))
	id, err = s.NodeID()
	require.NoError(t, err)
	assert.EqualValues(t, 0xABCDEF, id)
	wide, err = s.WideNodeID()
	require.NoError(t, err)
	assert.EqualValues(t, uint64(0x00FFEEDDCCBBAA99), wide)

	// A VLAN-style name with a dot must stay one path element.
	want := sysctl.InterfaceConfig{Enabled: true, ID: 0x1234, WideID: 0x89ABCDEF}
	require.NoError(t, s.SetInterface("eth0.100", want))
	got, err := s.Interface("eth0.100")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	b, err := os.ReadFile(filepath.Join(s.Root, "net/ipv6/conf/eth0.100/ioam6_id"))
	require.NoError(t, err)
	assert.Equal(t, "4660\n", string(b))
	other, err := s.Interface("eth0")
	require.NoError(t, err)
	assert.Equal(t, sysctl.InterfaceConfig{ID: 0xFFFF, WideID: 0xFFFFFFFF}, other)

	require.NoError(t, s.SetForwarding("eth0", true))
	fw, err := s.Forwarding("eth0")
	require.NoError(t, err)
	assert.True(t, fw)
	require.NoError(t, s.SetMaxHBHOptsNumber(16))
	n, err := s.MaxHBHOptsNumber()
	require.NoError(t, err)
	assert.Equal(t, 16, n)
	v, err := s.Get("net.ipv6.max_hbh_opts_number")
	require.NoError(t, err)
	assert.EqualValues(t, 16, v)
}

func TestRangeValidation(t *testing.T) {
	s := fakeTree(t, "eth0")
	tests := []struct {
		name    string
		set     func() error
		key     string
		wantMax int64
	}{
		{"node id 25 bits", func() error { return s.SetNodeID(1 << 24) }, "net.ipv6.ioam6_id", 0xFFFFFF},
		{"wide node id 57 bits", func() error { return s.SetWideNodeID(1 << 56) }, "net.ipv6.ioam6_id_wide", 0xFFFFFFFFFFFFFF},
		{"wide node id 64 bits", func() error { return s.SetWideNodeID(^uint64(0)) }, "net.ipv6.ioam6_id_wide", 0xFFFFFFFFFFFFFF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.set()
			require.ErrorIs(t, err, sysctl.ErrOutOfRange)
			var re *sysctl.RangeError
			require.True(t, errors.As(err, &re))
			assert.Equal(t, tc.key, re.Key)
			assert.Equal(t, tc.wantMax, re.Max)
			assert.Contains(t, err.Error(), tc.key)
			assert.Contains(t, err.Error(), strconv.FormatInt(tc.wantMax, 10))
		})
	}
	// The file keeps its old value after a rejected write.
	id, err := s.NodeID()
	require.NoError(t, err)
	assert.EqualValues(t, sysctl.DefaultNodeID, id)
	// max_hbh_opts_number is an int; the bound is int32.
	err = s.SetMaxHBHOptsNumber(1 << 40)
	require.ErrorIs(t, err, sysctl.ErrOutOfRange)
	assert.Contains(t, err.Error(), "net.ipv6.max_hbh_opts_number")
}

func TestInterfaceNames(t *testing.T) {
	s := fakeTree(t, "eth0")
	for _, bad := range []string{"", ".", "..", "a/b", "with space", strings.Repeat("x", 16)} {
		_, err := s.Interface(bad)
		require.ErrorIs(t, err, sysctl.ErrInvalidInterface, "ifname %q", bad)
		require.ErrorIs(t, s.SetInterfaceEnabled(bad, true), sysctl.ErrInvalidInterface, "ifname %q", bad)
	}
	_, err := s.Interface("missing0")
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "net.ipv6.conf.missing0.ioam6_enabled")
	_, err = s.Get("../etc/passwd")
	require.Error(t, err)
}

func TestParseErrors(t *testing.T) {
	s := fakeTree(t)
	require.NoError(t, os.WriteFile(filepath.Join(s.Root, "net/ipv6/ioam6_id"), []byte("abc\n"), 0o644))
	_, err := s.NodeID()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "net.ipv6.ioam6_id")
}
