// Package netnsutil runs code inside another network namespace, the one
// switch kernel/ioam6nl (sockets and sysctls of a chosen netns) and
// kernel/clt (a route socket in an application socket's netns) share. A
// netlink socket, like /proc/sys/net opened at that moment, belongs to the
// namespace of the thread that creates it (setns(2), CLONE_NEWNET), so the
// switch happens on a fresh OS thread locked for the duration, and that
// thread is discarded if it cannot be switched back. Linux only; entering
// a namespace needs CAP_SYS_ADMIN.
package netnsutil
