package ioam6nl

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// RunInNetNS runs fn on an OS thread that has joined the network namespace
// ns, then returns the thread to its original namespace. Sockets created in
// fn stay in ns for their whole life, whichever goroutine uses them later;
// /proc/sys/net opened in fn shows ns's sysctls. A handle that is not open
// (netns.None()) runs fn in place. Needs CAP_SYS_ADMIN.
//
// If the thread cannot be switched back, it stays locked so that the Go
// runtime retires it when the goroutine exits, and no other goroutine ever
// runs in the wrong namespace.
func RunInNetNS(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	done := make(chan error, 1)
	// A fresh goroutine keeps the caller's thread untouched even if the
	// restore fails (that goroutine then exits with its thread locked).
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("ioam6nl: current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("ioam6nl: setns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it is discarded on goroutine exit.
			done <- fmt.Errorf("ioam6nl: restore netns: %w (after fn: %v)", err, ferr)
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
