package clt

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// egress is what the sender writes as the egress interface of its own
// entry: the outgoing device's net.ipv6.conf.<dev>.ioam6_id and
// ioam6_id_wide, as a Linux transit node does (net/ipv6/ioam6.c).
type egress struct {
	id   uint16
	wide uint32
}

// unknownEgress is RFC 9197's "not available" (all ones), which Linux also
// writes for a device without ids.
var unknownEgress = egress{id: ioam6.IfIDUnavailable, wide: ioam6.WideIfIDUnavailable}

// Egress cache bounds. A route rarely changes within a minute; the TTL
// lets a changed route (or a device id set later) show up without a
// lookup per request.
const (
	egressTTL        = time.Minute
	egressMaxEntries = 4096
)

// egressLookup finds the egress device of the socket fd toward dst (in
// the socket's network namespace) and returns its IOAM ids.
type egressLookup func(fd int, dst netip.Addr) (egress, error)

// egressCache maps a destination to the sender's egress ids, so the route
// and device lookups happen once per destination and TTL, not per request.
// Failed lookups are cached too (as unknownEgress), so a host without
// routes to query costs no more than one lookup per destination and TTL.
//
// The key is the destination address (with its zone) only: sockets of one
// Injector toward the same peer share the entry. Source-address policy
// routing, SO_BINDTODEVICE and sockets of one Injector in several network
// namespaces with the same peer address are not told apart; the first
// lookup wins until the TTL expires.
type egressCache struct {
	mu sync.RWMutex
	m  map[netip.Addr]egressEntry
}

type egressEntry struct {
	eg egress
	at time.Time
}

// get returns the cached ids for dst when still fresh at now.
func (c *egressCache) get(dst netip.Addr, now time.Time) (egress, bool) {
	c.mu.RLock()
	e, ok := c.m[dst]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) >= egressTTL {
		return egress{}, false
	}
	return e.eg, true
}

// put stores eg for dst; when full it drops expired entries, then
// everything if none expired (the next requests look up again).
func (c *egressCache) put(dst netip.Addr, eg egress, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[netip.Addr]egressEntry{}
	}
	if _, ok := c.m[dst]; !ok && len(c.m) >= egressMaxEntries {
		for k, e := range c.m {
			if now.Sub(e.at) >= egressTTL {
				delete(c.m, k)
			}
		}
		if len(c.m) >= egressMaxEntries {
			clear(c.m)
		}
	}
	c.m[dst] = egressEntry{eg: eg, at: now}
}

// egressFor returns the egress ids toward dst for the socket fd, from the
// cache or by one lookup. An invalid dst or a failed lookup gives
// unknownEgress; failures are counted (Stats.EgressUnknown), never
// returned: the packet still goes out, as with 0xFFFF before.
func (inj *Injector) egressFor(fd int, dst netip.Addr, now time.Time) egress {
	if !dst.IsValid() {
		return unknownEgress
	}
	if eg, ok := inj.egress.get(dst, now); ok {
		return eg
	}
	eg, err := inj.lookupEgress(fd, dst)
	if err != nil {
		inj.egressUnknown.Add(1)
		eg = unknownEgress
	}
	inj.egress.put(dst, eg, now)
	return eg
}

// addrOf returns the IP (with zone) of a *net.TCPAddr or *net.UDPAddr,
// unmapping IPv4-mapped addresses; invalid for anything else.
func addrOf(a net.Addr) netip.Addr {
	var (
		ip   net.IP
		zone string
	)
	switch a := a.(type) {
	case *net.TCPAddr:
		if a == nil {
			return netip.Addr{}
		}
		ip, zone = a.IP, a.Zone
	case *net.UDPAddr:
		if a == nil {
			return netip.Addr{}
		}
		ip, zone = a.IP, a.Zone
	default:
		return netip.Addr{}
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	if zone != "" && addr.Is6() {
		addr = addr.WithZone(zone)
	}
	return addr
}
