// Package clt puts the trace context of the current OpenTelemetry span on an
// application's IPv6 packets, as an IOAM Pre-allocated Trace option (RFC
// 9197 §4.4) in a Hop-by-Hop header (RFC 9486 §3, RFC 8200 §4.3) built by
// kernel/ioam6, so that IOAM nodes on the path report hops tagged with the
// trace and span IDs.
//
// It uses the RFC 3542 socket API (IPV6_HOPOPTS, include/uapi/linux/in6.h):
//
//   - TCP: a sticky option set with setsockopt before connect
//     ([Injector.Dialer], [Injector.ControlContext]) so the SYN carries it, and
//     replaced before each request on a reused connection ([Injector.SetConn]).
//   - UDP: per-datagram ancillary data ([Injector.WriteMsgUDP]), or the
//     sticky option on the socket.
//   - net/http: [Transport] wraps an *http.Transport. It reads the span from
//     the request's context (trace.SpanContextFromContext) and sets the option
//     in httptrace.ClientTrace.GotConn, after the connection is chosen and
//     before the request is written. It composes with a ClientTrace already in
//     the context.
//
// # Without the socket option: the eBPF inserter's map
//
// With [Settings].SocketMap (kernel/bpfinsert.OpenSocketMap on the map
// clt-agent pins with insert.socket_map_pin) SetConn, the Dialer and the
// Transport write the socket's IDs into the inserter's per-socket map
// (keyed by SO_COOKIE, cached per TCP connection) while the map is
// loaded, and the inserter writes the header; they fall back to the socket
// option when it is gone. A sticky option set before is removed, since it
// would win on the wire.
//
// # The return path
//
// [Injector.Handler] wraps a server's handler (inside its tracing
// middleware) and sets the server span on the request's connection, made
// known by [ConnContext] (http.Server.ConnContext), so responses carry the
// server span's IDs.
//
// # The sender's own entry (oss carrier)
//
// With the oss carrier the sender writes its own node entry into the last
// pre-allocated slot (RFC 9197 §4.4; kernel/ioam6 HBHSpec.Own), filled as a
// Linux node fills its entry (net/ipv6/ioam6.c): node id from
// net.ipv6.ioam6_id (or Config.NodeID), wide node id (bit 8) from
// net.ipv6.ioam6_id_wide (or Config.NodeIDWide; both sysctls read through
// kernel/sysctl at New), hop limit 64, the timestamp of the
// header, ingress interface 0xFFFF (the packet originates here) and, as
// egress, the outgoing device's net.ipv6.conf.<dev>.ioam6_id and
// ioam6_id_wide. SetConn, ControlContext and WriteMsgUDP find that device
// for the socket's peer with RTM_GETROUTE ("ip -6 route get"; a zoned
// link-local peer leaves by its zone) and read its ids from the IPv6
// devconf of RTM_GETLINK (IFLA_AF_SPEC → AF_INET6 → IFLA_INET6_CONF,
// DEVCONF_IOAM6_ID and DEVCONF_IOAM6_ID_WIDE; include/uapi/linux/
// rtnetlink.h, if_link.h, ipv6.h). The netlink socket is opened in the
// socket's network namespace: SIOCGSKNS names it (needs CAP_NET_ADMIN;
// without it the calling thread's namespace is used) and a socket in
// another namespace than the caller's is reached with setns on a
// short-lived locked thread (needs CAP_SYS_ADMIN). Framing and the switch
// are kernel/internal/nlmsg and kernel/internal/netnsutil, shared with
// kernel/ioam6nl.
//
// The answer is cached per peer address for a minute (at most 4096
// peers), so a connection, or a stream of datagrams to one peer, costs one
// lookup, not one per request; a route or id change shows up within the
// minute. A failed lookup keeps 0xFFFF, is counted ([Stats].EgressUnknown,
// clt_ioam_egress_unknown_total) and cached like a success. The cache key
// is the peer alone: source-address policy routing, SO_BINDTODEVICE and one
// Injector serving sockets in several namespaces toward the same address
// are not told apart. [Injector.AppendHBH] has no socket and writes 0xFFFF.
//
// # HTTP/1.1 only
//
// The option belongs to a socket, not to a request. HTTP/2 multiplexes the
// streams of many requests (many spans) onto one connection, so no per-socket
// option can tell them apart. [NewTransport] therefore disables HTTP/2 (ALPN
// and h2c): each connection carries one request at a time, and the option
// set in GotConn describes exactly that request.
//
// # Retransmissions (docs/wire-format.md §3.3)
//
// TCP sends with the option that is current at (re)transmit time. A segment
// lost before the option changes is retransmitted with the next request's
// IDs, possibly coalesced with new data. The mapping from bytes to spans is
// therefore best effort: reports for a span may include a retransmission of
// the previous request's tail, and one may miss when the whole request was
// retransmitted later. The same holds for the client's pure ACKs.
//
// # Cost
//
// Tagging a request costs one setsockopt on the connection (and, once per
// peer and minute, the egress lookup: a netlink socket and two requests,
// tens of microseconds). The Go side is
// negligible (BenchmarkTransportGoOverhead); the kernel side is not: Linux
// reallocates the options, frees the old ones through RCU and resets the
// socket's cached route, so the next transmit looks the route up again
// (perf: ipv6_renew_options, kvfree_call_rcu, fib6 lookup, sk_setup_caps,
// more context switches): a few microseconds of CPU per request, which shows
// against a trivial handler and fades against real ones (figures in
// docs/benchmarks.md, from TestIntegrationTransportOverhead). Only sampled
// spans are tagged by default (Config.TagUnsampled), and an untagged request
// on a connection we never tagged costs no syscall.
//
// # Requirements and failure policy
//
// IPV6_HOPOPTS (sticky or cmsg) needs CAP_NET_RAW (Linux 5.15+ for IOAM;
// any kernel accepts the option, routers need IOAM enabled). The path MTU
// shrinks by the header length (TCP's MSS adapts; large UDP datagrams are
// fragmented, every fragment carrying the header).
//
// Failures never break the application by default: without CAP_NET_RAW
// (EPERM), with an IPv4 peer, or when the kernel refuses the option, the
// packet goes out without it; the Injector counts the skip by reason
// ([Stats], [Injector.Collector]) and logs each reason once. With
// Config.Strict the same conditions are returned as errors ([*SkipError]).
package clt
