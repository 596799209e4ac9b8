package main

import "net/netip"

// The demo network (client → athos → porthos → aramis), data links:
//
//	client (athos0 fd00:1::1) ── (client0 fd00:1::2) athos (porthos0 fd00:2::1) ──
//	   (athos0 fd00:2::2) porthos (aramis0 fd00:3::1) ══ (porthos0 fd00:3::2) aramis
//	                      porthos (planchet0 fd00:4::1) ── (porthos0 fd00:4::2) planchet
//	                     planchet (aramis0 fd00:5::1)   ── (planchet0 fd00:5::2) aramis
//
// ══ is a layer-2 "wire" namespace (wp ⇄ wa, package internal/wire) that
// copies frames between porthos and aramis and can hold them for a while: the
// congestion knob when the kernel has no sch_netem. planchet is the detour:
// porthos reaches aramis's fd00:3::2 directly, or through planchet while the
// re-route phase's /128 route is in place (reroute.go).
//
// plus one management veth per namespace (mgmt0, fd00:c17:<random>::<n>/64),
// bridged in the root namespace with the address fd00:c17:<random>::1, where
// Jaeger's OTLP receiver and clt-storage's collector listen. IOAM is never
// enabled on mgmt0, so telemetry and OTLP traffic carry no IOAM.
const (
	roleClient   = "client"
	roleAthos    = "athos"
	rolePorthos  = "porthos"
	roleAramis   = "aramis"
	roleWire     = "wire"
	rolePlanchet = "planchet"

	ifMgmt = "mgmt0"

	// The wire's two ends: toward porthos and toward aramis.
	wirePorthos = "wp"
	wireAramis  = "wa"
)

// IOAM identities of the demo (what the e2e test asserts on).
const (
	ioamNamespace = 123
	nodeAthos     = 1
	nodePorthos   = 2
	nodeAramis    = 3
	nodePlanchet  = 4

	ifAthosToPorthos   = 11 // athos porthos0 (egress of the encapsulating host)
	ifPorthosFromAthos = 21 // porthos athos0 (ingress, IOAM enabled)
	ifPorthosToAramis  = 22 // porthos aramis0 (egress, netem here)
	ifAramisFromPorth  = 31 // aramis porthos0 (ingress, IOAM enabled)
	ifPorthosToPlanch  = 23 // porthos planchet0 (egress of the detour)
	ifPlanchetFromPort = 41 // planchet porthos0 (ingress, IOAM enabled)
	ifPlanchetToAramis = 42 // planchet aramis0 (egress)
	ifAramisFromPlanch = 32 // aramis planchet0 (ingress, IOAM enabled)
)

var (
	addrClient    = netip.MustParseAddr("fd00:1::1")
	addrAthosCli  = netip.MustParseAddr("fd00:1::2")
	addrAthos     = netip.MustParseAddr("fd00:2::1")
	addrPorthosA  = netip.MustParseAddr("fd00:2::2")
	addrPorthosR  = netip.MustParseAddr("fd00:3::1")
	addrAramis    = netip.MustParseAddr("fd00:3::2")
	addrPorthosP  = netip.MustParseAddr("fd00:4::1")
	addrPlanchetP = netip.MustParseAddr("fd00:4::2")
	addrPlanchetR = netip.MustParseAddr("fd00:5::1")
	addrAramisP   = netip.MustParseAddr("fd00:5::2")
	mgmtRoleIndex = map[string]int{roleClient: 2, roleAthos: 3, rolePorthos: 4, roleAramis: 5, roleWire: 6, rolePlanchet: 7}
	// mgmtRoles is every namespace on the management bridge, in that order.
	mgmtRoles = []string{roleClient, roleAthos, rolePorthos, roleAramis, roleWire, rolePlanchet}
	// agentRoles run a clt-agent (the nodes whose kernel fills IOAM hops).
	agentRoles = []string{rolePorthos, roleAramis, rolePlanchet}
)
