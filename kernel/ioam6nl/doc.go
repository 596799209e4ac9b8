// Package ioam6nl talks to the Linux IOAM6 generic netlink family: it
// resolves the family and its ioam6_events multicast group, manages IOAM
// namespaces and opaque-state schemas (parity with `ip ioam`), and subscribes
// to IOAM trace events. It is the only package of the project that speaks
// netlink for IOAM: the family and group are resolved with its own
// CTRL_CMD_GETFAMILY request (include/uapi/linux/genetlink.h: CTRL_ATTR_FAMILY_ID,
// CTRL_ATTR_MCAST_GROUPS), not through a netlink library. The message
// framing is kernel/internal/nlmsg and the namespace switch
// kernel/internal/netnsutil, both shared with kernel/clt.
//
// It implements the protocol of include/uapi/linux/ioam6_genl.h and
// net/ipv6/ioam6.c: commands IOAM6_CMD_{ADD,DEL,DUMP}_NAMESPACE(S),
// IOAM6_CMD_{ADD,DEL,DUMP}_SCHEMA(S) and IOAM6_CMD_NS_SET_SCHEMA with
// attributes IOAM6_ATTR_NS_ID (u16), NS_DATA (u32), NS_DATA_WIDE (u64),
// SC_ID (u32), SC_DATA (binary, at most 1020 bytes) and SC_NONE (flag); and
// the event IOAM6_EVENT_TRACE with IOAM6_EVENT_ATTR_TRACE_{NAMESPACE (u16),
// NODELEN (u8), TYPE (u32), DATA (binary)}. Netlink integers are in host
// order; DATA holds node data in network order and is handed to
// ioam6.DecodeEvent untouched.
//
// # Kernel versions and capabilities
//
//   - The IOAM6 family (namespaces, schemas): Linux 5.15+. Adding, deleting
//     and attaching need CAP_NET_ADMIN (GENL_ADMIN_PERM); dumps need it too.
//   - The ioam6_events group: Linux 6.9+; joining it needs CAP_NET_ADMIN
//     (GENL_MCAST_CAP_NET_ADMIN). Older kernels make Subscribe return
//     ErrNoEventGroup.
//   - Opening a socket in another network namespace ([Config.NetNS],
//     [RunInNetNS]) needs CAP_SYS_ADMIN (setns).
//
// Everything is per network namespace: namespaces, schemas and events exist
// only in the netns whose socket asked. A subscriber in the root netns sees
// no events from packets handled in a child netns.
//
// # Events
//
// The kernel sends one event per IOAM-processed packet per node, only when
// the ingress interface has ioam6_enabled=1 and the namespace is known, and
// also on overflow (with the previous hop's data). DATA is the trace data
// from RemainingLen*4 to the end of the option: this node's entry first, then
// the older ones, then whatever follows the pre-allocated area. There is no
// RemainingLen, overflow flag or address in the event.
//
// Events are not batched by the kernel: each one costs a netlink message.
// When the receive buffer fills, the kernel drops events and the next read
// fails with ENOBUFS; [Subscriber] counts that and keeps reading.
//
// # Read modes
//
// [SubscriberConfig.Mode] chooses how Read waits. [ReadNetpoll] (default)
// keeps the socket in Go's netpoller: lowest latency, but the netpoller
// wakes a runtime thread for every event datagram. [ReadBatch] keeps the socket out
// of the netpoller, drains it with non-blocking recvmmsg(2), pauses
// [SubscriberConfig.BatchWait] (default 5 ms) after a Read that emptied it
// so that events queue in the kernel, and blocks in ppoll(2) on the socket
// and an eventfd only when it is empty; Close and SetReadDeadline write the
// eventfd, so they unblock a Read promptly. Both modes have the same API,
// allocate nothing per Read and start no goroutine. clt-agent uses batch
// mode. Bursts need a large buffer: with the default 8 MiB
// ([DefaultReceiveBuffer]) and batched reads one subscriber kept up with
// every rate the benchmark could offer, with the kernel's default 208 KiB it
// did not (figures in docs/benchmarks.md, from TestIntegrationEventRate,
// CLT_BENCH=1).
package ioam6nl
