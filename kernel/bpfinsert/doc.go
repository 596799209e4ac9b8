// Package bpfinsert tags the IPv6 packets of any application's HTTP/1.x
// requests with the IOAM trace context of their W3C traceparent header,
// without changing the application: a tc egress eBPF program
// (bpf/insert.bpf.c, compiled into the committed bpf/insert_bpfel.o by
// `make bpf`) inserts the Hop-by-Hop header of RFC 8200 §4.3 carrying the
// IOAM Pre-allocated Trace option (RFC 9486 §3, RFC 9197 §4.4) into every
// packet of a socket's current request.
//
// What the program does, per packet leaving a configured interface:
//
//   - IPv6 TCP to a configured destination prefix and port only, and UDP
//     of sockets whose IDs an application set (SetSocket, [SocketMap]);
//     anything else (IPv4, other destinations, packets already carrying an
//     extension header) passes untouched and is counted.
//   - A segment whose payload starts with an HTTP/1.x method is a new
//     request: its first 2048 bytes are searched for a `traceparent` header
//     (version 00, lowercase hex, W3C Trace Context §3.2). A sampled one
//     replaces the socket's state (socket cookie → trace ID, span ID) in an
//     LRU hash; a missing, invalid or unsampled one marks it untagged, so a
//     keep-alive connection's packets always carry their current request's
//     IDs or none. The destination prefix and port are checked at a
//     socket's first request (and on every packet of state set through
//     the map API), not on every packet.
//   - Packets of a socket with state get the header: a template built in Go
//     by kernel/ioam6.AppendHBH (oss carrier: the sender's own node entry,
//     as kernel/clt fills it, holds the IDs), with the IDs and the own
//     entry's timestamp patched in. A GSO packet whose segments would not
//     fit with the header gets a gso_size lowered by the header length
//     (bpf_skb_adjust_room without BPF_F_ADJ_ROOM_FIXED_GSO); one that fits
//     keeps it (with that flag); a non-GSO packet that would exceed
//     the link MTU is sent untagged (counted). A tc ingress program lowers
//     the MSS of configured servers' SYN-ACKs by the header length, so
//     full-size segments fit in the first place.
//
// Programs are attached with tcx links (Linux 6.6+, include/uapi/linux/bpf.h
// BPF_TCX_EGRESS/INGRESS), owned by the process: a clean Close detaches
// them and a crashed process's links are released by the kernel with its
// file descriptors, so no stale filter can stay on an interface.
//
// Limits: the request headers must be in one segment and start it (HTTP/1.x
// in clear text; TLS and HTTP/2 need the per-socket map API, [Inserter.SetSocket]);
// Ethernet-framed devices only; retransmissions carry the socket's IDs at
// (re)transmit time, as with the socket option (docs/wire-format.md §3.3).
package bpfinsert
