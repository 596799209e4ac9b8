package plugin

import (
	"testing"
	"time"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A path that changes after a router (the demo's reroute: 1 > 2 > 3, then
// 1 > 2 > 4 > 3): router 2's own records hold the packets of both paths, so
// the canonical path's hops must not take router 2's first timestamp or
// egress from the first path's packets.
func TestEnrichPathForkedAfterARouter(t *testing.T) {
	routerBoth := rec(2, 0, 1, 2) // node 2's view of both paths: seen from offset 0
	direct := rec(3, 0, 1, 2, 3)  // destination, first path
	detour := rec(3, 5, 1, 2, 4, 3)
	detour.Hops[1].EgressIf = 99 // node 2's egress toward node 4
	viaFour := rec(4, 5, 1, 2, 4)
	viaFour.Hops[1].EgressIf = 99
	sp := newSpan()
	sp.EndTimeUnixNano = spanStart + uint64(10*time.Second)
	EnrichSpan(sp, []*collectorv1.IOAMRecord{routerBoth, direct, detour, viaFour})

	hops, _ := hopEvents(sp)
	require.Len(t, hops, 4)
	a := attrMap(hops[1].Attributes)
	assert.Equal(t, int64(99), a[AttrEgressIf].GetIntValue(), "node 2's egress on the canonical path")
	// Node 2's timestamp is the detour's (offset 5 s), so the link 2 → 4
	// takes what the detour's packet took (fractions 200 → 300 µs), not 5 s.
	d := attrMap(hops[2].Attributes)[AttrLinkDelayNs].GetIntValue()
	assert.Equal(t, int64(100*time.Microsecond), d)
	assert.Contains(t, warningsOf(sp), WarnPathChanged+"1 > 2 > 3 then 1 > 2 > 4 > 3")
}
