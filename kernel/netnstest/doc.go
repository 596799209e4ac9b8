// Package netnstest builds and tears down network-namespace topologies for
// tests and demos: hosts and routers joined by veth pairs, IPv6 ULA
// addresses (nodad), static routes, forwarding, and IOAM configured through
// this project's own code (kernel/ioam6nl for IOAM namespaces, kernel/sysctl
// for node and interface ids), never through `ip` commands.
//
// The core ([New], [Topology.Close]) needs no *testing.T, so a demo binary
// can use it; [Build] wraps it for tests and registers the cleanup with
// t.Cleanup, which runs even when the test fails. Namespace names are
// clt-<6 random hex>-<role>; addresses are fd00::/8 only.
//
// Run code inside a node with [Node.Do] (a locked OS thread that joined the
// namespace). Sockets created there stay in that namespace whichever
// goroutine uses them later, so listeners and dialers made with
// [Node.Listen], [Node.ListenPacket] and [Node.DialContext] can be served from
// ordinary goroutines. [Node.Command] runs a process through `ip netns exec`;
// it is killed by Close.
//
// Requirements: root (CAP_SYS_ADMIN for namespaces and setns, CAP_NET_ADMIN
// for links, IOAM genl and sysctls), Linux 5.15+ for IOAM, 6.9+ for
// ioam6_events. [RequirePrivileged] implements the project's rule: skip
// without root, unless CLT_REQUIRE_PRIVILEGED=1, where the test fails.
package netnstest
