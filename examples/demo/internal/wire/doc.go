// Package wire is a userspace Ethernet cable with a settable delay: it joins
// two interfaces with AF_PACKET sockets and copies every frame from one to the
// other, holding the frames of one direction for a configurable time.
//
// The demo uses it between porthos and aramis to inject congestion-like delay
// when the kernel has no sch_netem (CONFIG_NET_SCH_NETEM is off on the
// project's CI kernel). Being layer 2, it leaves the IPv6 Hop-by-Hop IOAM
// option untouched: porthos fills its hop before the delay, aramis after it,
// exactly as with `tc qdisc add dev <porthos→aramis> root netem delay D`.
//
// Frames are read and written with PACKET_VNET_HDR, so checksum-offloaded
// (CHECKSUM_PARTIAL) and GSO frames from veth cross unchanged, and with
// PACKET_IGNORE_OUTGOING, so the sockets never see their own writes.
// Linux only; needs CAP_NET_RAW.
package wire

// Stats are the counters of one direction.
type Stats struct {
	Forwarded, Dropped uint64
}
