//go:build !linux

package clt

import "net/netip"

// lookupEgressNetlink: route and device lookups are implemented for Linux
// only; the own entry keeps 0xFFFF.
func lookupEgressNetlink(int, netip.Addr) (egress, error) { return unknownEgress, errNotSupported }
