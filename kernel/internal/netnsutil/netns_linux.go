package netnsutil

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Error is a failure of the switch itself (not of the function run): Op
// is "current netns", "setns" or "restore netns".
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Do runs fn on an OS thread that has joined the network namespace open at
// file descriptor ns (a /proc/<pid>/ns/net or /var/run/netns/<name> fd),
// then returns the thread to its original namespace, and returns fn's
// error as is or an [*Error]. A negative ns runs fn in place.
//
// fn runs on a fresh goroutine so that the caller's thread is never
// touched. If the thread cannot be switched back, that goroutine exits
// with the thread still locked, so the Go runtime retires the thread and
// no other goroutine ever runs in the wrong namespace; fn has run then,
// and the caller must release what it created (the error says so).
func Do(ns int, fn func() error) error {
	if ns < 0 {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- &Error{"current netns", err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- &Error{"setns", err}
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it is discarded on goroutine exit.
			done <- &Error{"restore netns", fmt.Errorf("%w (after fn: %v)", err, ferr)}
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
