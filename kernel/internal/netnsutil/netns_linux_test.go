package netnsutil_test

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/internal/netnsutil"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inode identifies a network namespace (nsfs inode).
func inode(t *testing.T, fd int) uint64 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(fd, &st))
	return st.Ino
}

// threadNS is the inode of the calling thread's network namespace.
func threadNS(t *testing.T) uint64 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Stat("/proc/thread-self/ns/net", &st))
	return st.Ino
}

// anonNS makes a network namespace without a name (alive while the
// returned fd is open, so nothing outlives the test) and closes it in
// Cleanup.
func anonNS(t *testing.T) int {
	t.Helper()
	fd := make(chan int, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		f, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		fd <- f
	}()
	select {
	case err := <-errc:
		t.Fatalf("new netns: %v", err)
	case f := <-fd:
		t.Cleanup(func() { unix.Close(f) })
		return f
	}
	return -1
}

func TestInPlace(t *testing.T) {
	called := false
	boom := errors.New("boom")
	err := netnsutil.Do(-1, func() error { called = true; return boom })
	assert.True(t, called)
	assert.Same(t, boom, err, "fn's error is returned as is")
}

func TestIntegrationDo(t *testing.T) {
	netnstest.RequirePrivileged(t)
	ns := anonNS(t)
	want := inode(t, ns)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadNS(t)
	require.NotEqual(t, before, want)

	var (
		st      unix.Stat_t
		sock    = -1
		statErr error
		sockErr error
	)
	boom := errors.New("boom")
	err := netnsutil.Do(ns, func() error {
		// fn runs on another goroutine: record, assert afterwards.
		statErr = unix.Stat("/proc/thread-self/ns/net", &st)
		// A socket made in fn belongs to ns for its whole life.
		sock, sockErr = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		return boom
	})
	assert.Same(t, boom, err)
	require.NoError(t, statErr)
	require.NoError(t, sockErr)
	inside := st.Ino
	assert.Equal(t, want, inside, "fn ran in ns")
	assert.Equal(t, before, threadNS(t), "the caller's thread never moved")
	defer unix.Close(sock)
	sns, err := unix.IoctlRetInt(sock, unix.SIOCGSKNS)
	require.NoError(t, err)
	defer unix.Close(sns)
	assert.Equal(t, want, inode(t, sns), "the socket stays in ns")
}

func TestIntegrationDoBadHandle(t *testing.T) {
	netnstest.RequirePrivileged(t)
	f, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer f.Close()
	called := false
	err = netnsutil.Do(int(f.Fd()), func() error { called = true; return nil })
	assert.False(t, called)
	var se *netnsutil.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "setns", se.Op)
	assert.ErrorIs(t, err, unix.EINVAL)
}
