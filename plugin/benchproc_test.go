package plugin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchServerEnv, set in the environment of this test binary, makes
// TestMain run a clt-storage server instead of the tests: the benchmarks
// that measure a read as Jaeger sees it put the server in its own process,
// as it is deployed, so that the client's decoding and its garbage
// collection do not pause the server (startEnvProcess).
const benchServerEnv = "CLT_BENCH_SERVER"

// serveForBench runs the server of testConfigIn with its own store directory
// until stdin closes; it prints the storage and collector addresses first.
func serveForBench() int {
	dir, err := os.MkdirTemp("", "clt-bench-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := New(testConfigIn(dir), Settings{})
	if err == nil {
		err = srv.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%s %s\n", srv.StorageAddr(), srv.CollectorAddr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startEnvProcess starts serveForBench in a child process (this test
// binary again) and returns clients for it; the server stops and its
// directory goes when the benchmark ends.
func startEnvProcess(b *testing.B) *env {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("bench server: %v: %s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			b.Errorf("bench server did not stop: %s", stderr.String())
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(b, err, "bench server: %s", stderr.String())
	addrs := strings.Fields(line)
	require.Len(b, addrs, 2, "bench server printed %q", line)
	e := envOf(dialTest(b, addrs[0]), dialTest(b, addrs[1]))
	e.serverPID = cmd.Process.Pid
	return e
}

// cpuTime is the CPU time (user + system) process pid (0: this one) has
// used, from /proc/<pid>/stat, in clock ticks of 10 ms.
func cpuTime(b *testing.B, pid int) time.Duration {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	stat, err := os.ReadFile("/proc/" + p + "/stat")
	require.NoError(b, err)
	// The fields after the command name (in parentheses, which may hold
	// spaces): utime and stime are the 12th and 13th (proc(5)).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	require.Greater(b, len(f), 12)
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	require.NoError(b, errors.Join(err1, err2))
	return time.Duration(ut+st) * 10 * time.Millisecond
}
