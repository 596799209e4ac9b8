// Package agent is clt-agent, the node daemon that runs on every IOAM node (router
// or destination host) and reports the IOAM trace data the kernel filled to
// clt-storage.
//
// # Pipeline
//
// A [Source] yields batches of raw IOAM trace events: by default the kernel's
// IOAM6 generic-netlink multicast group "ioam6_events" (Linux >= 6.9,
// include/uapi/linux/ioam6_genl.h, one event per packet per IOAM node, DATA =
// the filled part of the trace, newest entry first), or, as a fallback, an
// AF_PACKET capture of the Hop-by-Hop Options header on the node's egress
// (PACKET_OUTGOING, so the local hop is already written; RFC 9486 carriage of the
// RFC 9197 §4.4 Pre-allocated Trace option).
//
// Each event is decoded with the trace-context carrier configured for its IOAM
// namespace (kernel/ioam6), then aggregated per (trace id, span id, path) over a
// short window: packet counts, the last value of every hop field, min/max of
// transit delay (RFC 9197 §4.4.2.5) and queue depth (§4.4.2.7), first and last
// hop timestamps. Records are exported in acknowledged batches to the collector
// API (api/collector/v1) with retries, exponential backoff with jitter and a
// bounded queue that drops the oldest batch when full; drops are counted.
//
// # Node identity
//
// A record says whether this node wrote its own hop: the first entry of the
// event's node data is this node's entry unless the trace had already
// overflowed (docs/wire-format.md §6: the event carries no Overflow flag). The
// entry is recognised by the short node id (trace-type bit 0), else by the
// wide one (bit 8): node_id / node_id_wide, else setup, else the
// net.ipv6.ioam6_id / ioam6_id_wide sysctls. A trace type with neither
// claims neither a write nor an overflow. Every record carries node_name.
//
// # Sources and capabilities
//
// The netlink source needs CAP_NET_ADMIN (the group is
// GENL_MCAST_CAP_NET_ADMIN). It is a kernel/ioam6nl subscriber in batch
// mode (ioam6nl.ReadBatch): the socket stays out of Go's netpoller and is
// read with recvmmsg(2) after a short pause (source.batch_wait), so a busy
// node costs one wake-up per batch rather than per packet. The agent has no
// netlink code of its own: everything that touches Linux IOAM lives in
// kernel/... (a test forbids vishvananda/netlink in its dependencies). The capture
// source needs CAP_NET_RAW; it reads outgoing packets with a Hop-by-Hop
// header and decodes every IOAM option in it (RFC 8200 §4.3 option walk).
// It reads outgoing packets only, so on a destination host (no forwarding)
// it sees nothing: the agent logs that and `clt-agent check` reports it; use
// the netlink source there. Node setup needs
// CAP_NET_ADMIN; netns_path needs CAP_SYS_ADMIN.
//
// # Observability
//
// Nothing is logged per packet or record; counters live on a private Prometheus
// registry served on the admin HTTP listener (/metrics, /healthz).
package agent
