package ioam6nl

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netns"

	"github.com/cross-layer-telemetry/clt/kernel/internal/netnsutil"
)

// RunInNetNS runs fn on an OS thread that has joined the network namespace
// ns, then returns the thread to its original namespace. Sockets created in
// fn stay in ns for their whole life, whichever goroutine uses them later;
// /proc/sys/net opened in fn shows ns's sysctls. A handle that is not open
// (netns.None()) runs fn in place. Needs CAP_SYS_ADMIN.
//
// If the thread cannot be switched back, it stays locked so that the Go
// runtime retires it when the goroutine exits, and no other goroutine ever
// runs in the wrong namespace (package kernel/internal/netnsutil, shared
// with kernel/clt).
func RunInNetNS(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	err := netnsutil.Do(int(ns), fn)
	if se := (*netnsutil.Error)(nil); errors.As(err, &se) {
		return fmt.Errorf("ioam6nl: %w", err)
	}
	return err
}
