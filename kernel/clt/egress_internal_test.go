package clt

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// len returns the number of entries.
func (c *egressCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

func TestEgressCacheTTLAndBound(t *testing.T) {
	inj, err := New(DefaultConfig(), Settings{})
	require.NoError(t, err)
	var calls int
	answer := egress{id: 5, wide: 50}
	inj.lookupEgress = func(int, netip.Addr) (egress, error) {
		calls++
		if answer == unknownEgress {
			return unknownEgress, errors.New("down")
		}
		return answer, nil
	}
	dst := netip.MustParseAddr("fd00:1::2")
	t0 := time.Unix(1000, 0)

	assert.Equal(t, egress{5, 50}, inj.egressFor(3, dst, t0))
	assert.Equal(t, egress{5, 50}, inj.egressFor(3, dst, t0.Add(egressTTL-time.Nanosecond)))
	assert.Equal(t, 1, calls, "fresh entry")

	// After the TTL a changed route (or device id) shows up.
	answer = egress{id: 6, wide: 60}
	assert.Equal(t, egress{6, 60}, inj.egressFor(3, dst, t0.Add(egressTTL)))
	assert.Equal(t, 2, calls)

	// A failure is cached as unknown and counted once per TTL.
	answer = unknownEgress
	tf := t0.Add(3 * egressTTL)
	assert.Equal(t, unknownEgress, inj.egressFor(3, dst, tf))
	assert.Equal(t, unknownEgress, inj.egressFor(3, dst, tf.Add(time.Second)))
	assert.Equal(t, 3, calls)
	assert.EqualValues(t, 1, inj.Stats().EgressUnknown)

	// No destination: no lookup.
	assert.Equal(t, unknownEgress, inj.egressFor(3, netip.Addr{}, tf))
	assert.Equal(t, 3, calls)

	// Zones are part of the key.
	answer = egress{id: 1, wide: 1}
	ll := netip.MustParseAddr("fe80::1")
	inj.egressFor(3, ll.WithZone("a0"), tf)
	inj.egressFor(3, ll.WithZone("b0"), tf)
	assert.Equal(t, 5, calls)

	// Bounded: filling the cache drops expired entries first, then all.
	var c egressCache
	base := netip.MustParseAddr("fd00::").As16()
	addr := func(i int) netip.Addr {
		a := base
		a[14], a[15] = byte(i>>8), byte(i)
		return netip.AddrFrom16(a)
	}
	for i := range egressMaxEntries {
		c.put(addr(i), egress{}, t0)
	}
	require.Equal(t, egressMaxEntries, c.len())
	c.put(addr(0), egress{id: 1}, t0) // an update never evicts
	assert.Equal(t, egressMaxEntries, c.len())
	c.put(addr(egressMaxEntries), egress{}, t0.Add(time.Second))
	assert.Equal(t, 1, c.len(), "none expired: cleared")
	c.put(addr(egressMaxEntries+1), egress{}, t0.Add(2*egressTTL))
	assert.Equal(t, 2, c.len())
	for i := range egressMaxEntries - 2 {
		c.put(addr(i), egress{}, t0.Add(3*egressTTL))
	}
	require.Equal(t, egressMaxEntries, c.len())
	c.put(addr(egressMaxEntries+2), egress{}, t0.Add(3*egressTTL+time.Second))
	assert.Equal(t, egressMaxEntries-1, c.len(), "the expired entries went, the fresh stayed")
}
