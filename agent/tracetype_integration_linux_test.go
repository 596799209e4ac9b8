package agent

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// syncBuffer is a bytes.Buffer safe for the exporter and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stdoutAgent runs an agent in role's namespace that prints its records.
type stdoutAgent struct {
	*Agent
	out *syncBuffer
	log *syncBuffer
}

func startStdoutAgent(t *testing.T, topo *netnstest.Topology, role string, mod func(*Config)) *stdoutAgent {
	t.Helper()
	cfg := DefaultConfig()
	cfg.AgentID = role
	cfg.NodeName = role
	cfg.NetNSPath = topo.Node(role).Path
	cfg.Source.Kind = SourceNetlink
	cfg.Namespaces = []NamespaceConfig{{ID: itNamespace}}
	cfg.Aggregation.Window = time.Minute // records leave at Close
	cfg.Export.Collector = ""
	cfg.Export.Stdout = true
	cfg.Admin.Listen = ""
	if mod != nil {
		mod(&cfg)
	}
	sa := &stdoutAgent{out: &syncBuffer{}, log: &syncBuffer{}}
	a, err := New(cfg, Settings{Stdout: sa.out, Logger: slog.New(slog.NewTextHandler(sa.log, nil))})
	require.NoError(t, err)
	require.NoError(t, a.Start(t.Context()), role)
	t.Cleanup(func() { _ = a.Close() })
	sa.Agent = a
	return sa
}

// records closes the agent and returns what it printed.
func (sa *stdoutAgent) records(t *testing.T) []*collectorv1.IOAMRecord {
	t.Helper()
	require.NoError(t, sa.Close())
	var recs []*collectorv1.IOAMRecord
	sc := bufio.NewScanner(strings.NewReader(sa.out.String()))
	for sc.Scan() {
		r := &collectorv1.IOAMRecord{}
		require.NoError(t, protojson.Unmarshal(sc.Bytes(), r))
		recs = append(recs, r)
	}
	return recs
}

func waitDecodedOne(t *testing.T, a *Agent, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(a.Metrics().EventsDecoded) < n {
		if time.Now().After(deadline) {
			t.Fatalf("decoded %v events, want %v", testutil.ToFloat64(a.Metrics().EventsDecoded), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cltHBH builds the header kernel/clt's injector sends from the client: its
// own entry's ids come from the client's sysctls (node 1, wide 0x1000001).
func cltHBH(t *testing.T, client *netnstest.Node, typ ioam6.TraceType, slots int, ids ioam6.IDs) []byte {
	t.Helper()
	cfg := clt.DefaultConfig()
	cfg.Namespace, cfg.TraceType, cfg.HopSlots = itNamespace, typ, slots
	var inj *clt.Injector
	require.NoError(t, client.Do(func() error {
		var err error
		inj, err = clt.New(cfg, clt.Settings{}) // reads the sysctls of this thread's namespace
		return err
	}))
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: ids.TraceID, SpanID: ids.SpanID, TraceFlags: trace.FlagsSampled})
	hbh, err := inj.AppendHBH(nil, sc)
	require.NoError(t, err)
	return hbh
}

// TestIntegrationTraceTypes: client → r1 → server through real kernels,
// for wide-only, short+wide, snapshot-only and every-defined-field trace
// types, with room for both writers and with one slot (the server
// overflows). Each agent's record says how many hops, whether it wrote and
// whether the trace overflowed; hop 0 carries the client's own ids as
// kernel/clt read them from its sysctls.
func TestIntegrationTraceTypes(t *testing.T) {
	types := []struct {
		name string
		typ  ioam6.TraceType // as configured; the oss carrier adds bit 22
		// ids: the type names its writers, so writing and overflow are known.
		ids bool
	}{
		{"wide-only", ioam6.BitWideHopLimitNodeID | ioam6.BitWideIfIDs, true},
		{"short+wide", ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitWideHopLimitNodeID, true},
		{"snapshot-only", 0, false},
		{"full", 0xFFF000, true}, // bits 0-11: 2 slots fit 255 bytes
	}
	topo := chainN(t, 1) // client(1) - r1(2) - server(3)
	server := topo.Node("server").Addr("s0")
	snd := newSender(t, topo.Node("client"), server)
	for ti, tc := range types {
		for _, overflow := range []bool{false, true} {
			name := tc.name
			if overflow {
				name += "/overflow"
			}
			t.Run(name, func(t *testing.T) {
				agents := map[string]*stdoutAgent{
					"r1":     startStdoutAgent(t, topo, "r1", nil),
					"server": startStdoutAgent(t, topo, "server", nil),
				}
				slots := 2
				if overflow {
					slots = 1
				}
				ids := itIDs(byte(0x40+ti), map[bool]int{false: 0, true: 1}[overflow])
				const packets = 3
				require.NoError(t, snd.send(cltHBH(t, topo.Node("client"), tc.typ, slots, ids), packets))
				for _, a := range agents {
					waitDecodedOne(t, a.Agent, packets)
				}
				typ := tc.typ | ioam6.BitOpaqueStateSnapshot
				want := map[string]struct {
					hops            int
					wrote, overflow bool
				}{
					"r1":     {2, tc.ids, false},
					"server": {3, tc.ids, false},
				}
				if overflow {
					want["server"] = struct {
						hops            int
						wrote, overflow bool
					}{2, false, tc.ids}
				}
				for role, a := range agents {
					recs := a.records(t)
					require.Len(t, recs, 1, role)
					r := recs[0]
					w := want[role]
					assert.Equal(t, uint32(typ), r.TraceType, role)
					assert.Equal(t, ids.TraceID[:], r.TraceId, role)
					assert.Equal(t, uint64(packets), r.Packets, role)
					assert.Equal(t, role, r.ReporterNodeName, "node_name")
					assert.Len(t, r.Hops, w.hops, "%s hop count", role)
					assert.Equal(t, w.wrote, r.ReporterWrote, "%s reporter_wrote", role)
					assert.Equal(t, w.overflow, r.Overflow, "%s overflow", role)
					h0 := r.Hops[0]
					if typ.Has(ioam6.BitHopLimitNodeID) {
						assert.Equal(t, uint32(1), h0.NodeId, "%s hop 0 node id", role)
					}
					if typ.Has(ioam6.BitWideHopLimitNodeID) {
						assert.Equal(t, wideOf(1), h0.WideNodeId, "%s hop 0 wide id (client's ioam6_id_wide)", role)
						assert.Equal(t, wideOf(2), r.Hops[1].WideNodeId, "%s hop 1 wide id", role)
						if w.hops == 3 {
							assert.Equal(t, wideOf(3), r.Hops[2].WideNodeId, "%s hop 2 wide id", role)
						}
					}
					assert.Equal(t, uint32(ioam6.DefaultSchemaID), h0.SnapshotSchemaId, role)
				}
			})
		}
	}
}

// TestIntegrationCaptureOptionLayouts: r1's capture source decodes the CLT
// option wherever it sits in the Hop-by-Hop header: after an operator's own
// IOAM option (namespace 124, which r1 also fills), before it, or after a
// Router Alert. The old filter looked only at HBH+4 and HBH+28 and the old
// walk stopped at the first IOAM option.
func TestIntegrationCaptureOptionLayouts(t *testing.T) {
	topo := chain(t)
	conn, err := topo.Node("r1").IOAM()
	require.NoError(t, err)
	require.NoError(t, conn.AddNamespace(t.Context(), ioam6nl.Namespace{ID: 124}))
	require.NoError(t, conn.Close())
	a := startStdoutAgent(t, topo, "r1", func(c *Config) {
		c.Source.Kind = SourceCapture
		c.Source.Interfaces = []string{"r1b"}
	})
	snd := newSender(t, topo.Node("client"), itServerAddr)
	operator := optionOf(t, mustHBH(t, ioam6.HBHSpec{NamespaceID: 124, Type: ioam6.BitHopLimitNodeID, Slots: 2,
		Carrier: ioam6.CarrierConfig{Carrier: ioam6.CarrierTail}}, ioam6.IDs{}))
	layouts := []struct {
		name string
		hbh  func(clt []byte) []byte
		opts int
	}{
		{"operator option first", func(c []byte) []byte { return composeHBH(t, padN0, operator, c) }, 2},
		{"clt option first", func(c []byte) []byte { return composeHBH(t, padN0, c, operator) }, 2},
		{"router alert first", func(c []byte) []byte { return composeHBH(t, routerAlert, padN0, c) }, 1},
	}
	const packets = 4
	var idss []ioam6.IDs
	others := 0
	for i, l := range layouts {
		ids := itIDs(0x50, i)
		idss = append(idss, ids)
		require.NoError(t, snd.send(l.hbh(optionOf(t, testHBH(t, ids))), packets), l.name)
		others += (l.opts - 1) * packets
	}
	waitDecodedOne(t, a.Agent, float64(len(layouts)*packets))
	recs := a.records(t)
	m := a.Metrics()
	assert.Equal(t, float64(len(layouts)*packets+others), testutil.ToFloat64(m.EventsReceived.WithLabelValues(SourceCapture)),
		"every IOAM option of every packet is counted")
	assert.Equal(t, float64(others), testutil.ToFloat64(m.EventsMalformed.WithLabelValues(ReasonUnconfiguredNamespace)))
	require.Len(t, recs, len(layouts))
	for i, r := range recs {
		assert.Equal(t, idss[i].SpanID[:], r.SpanId, layouts[i].name)
		assert.Equal(t, uint64(packets), r.Packets, layouts[i].name)
		require.Len(t, r.Hops, 2, "%s: the host and r1", layouts[i].name)
		assert.Equal(t, uint32(2), r.Hops[1].NodeId, layouts[i].name)
		assert.True(t, r.ReporterWrote, layouts[i].name)
	}
}

// TestIntegrationCaptureOnDestinationIsReported: a destination host sends
// none of the traffic it receives, so its capture source sees nothing; the
// agent's log and `clt-agent check` say so, and check passes on a router.
func TestIntegrationCaptureOnDestinationIsReported(t *testing.T) {
	topo := chain(t)
	a := startStdoutAgent(t, topo, "server", func(c *Config) { c.Source.Kind = SourceCapture })
	snd := newSender(t, topo.Node("client"), itServerAddr)
	require.NoError(t, snd.send(testHBH(t, itIDs(0x60, 0)), 5))
	time.Sleep(200 * time.Millisecond) // several ring retire periods
	assert.Zero(t, testutil.ToFloat64(a.Metrics().EventsReceived.WithLabelValues(SourceCapture)), "the fact being reported")
	assert.Contains(t, a.log.String(), "capture source on a node that does not forward")

	check := func(role string) (string, error) {
		cfg := DefaultConfig()
		cfg.NetNSPath = topo.Node(role).Path
		cfg.Source.Kind = SourceCapture
		cfg.Namespaces = []NamespaceConfig{{ID: itNamespace}}
		var out strings.Builder
		err := Check(context.Background(), cfg, &out)
		return out.String(), err
	}
	out, err := check("server")
	require.ErrorIs(t, err, ErrCheckFailed, out)
	assert.Contains(t, out, "MISSING  capture source on a node that does not forward")
	out, err = check("r1")
	require.NoError(t, err, out)
	assert.Contains(t, out, "net.ipv6.conf.all.forwarding = 1")
}

// TestIntegrationWideOnlyThroughStorage: what clt-storage makes of wide-only
// reports from r1, r2 and the server: a trace with room for every hop is not
// an overflow (every wide-only report used to say overflow), and one with a
// single slot is, with r1's two hops as the path.
func TestIntegrationWideOnlyThroughStorage(t *testing.T) {
	topo := chain(t)
	st := startStorage(t)
	agents := startAgents(t, topo, st.collector, nil)
	snd := newSender(t, topo.Node("client"), itServerAddr)
	typ := ioam6.BitWideHopLimitNodeID | ioam6.BitWideIfIDs
	fits, overflows := itIDs(0x70, 0), itIDs(0x70, 1)
	require.NoError(t, snd.send(cltHBH(t, topo.Node("client"), typ, 3, fits), 2))
	require.NoError(t, snd.send(cltHBH(t, topo.Node("client"), typ, 1, overflows), 2))
	waitDecoded(t, agents, 4)
	closeAgents(t, agents)
	st.writeSpans([]ioam6.IDs{fits, overflows})

	sp := st.span(fits)
	require.NotNil(t, sp)
	assert.Nil(t, attr(sp, plugin.AttrOverflow), "all four hops written: no overflow")
	assert.Equal(t, int64(4), attr(sp, plugin.AttrHopCount).GetIntValue())
	assert.Equal(t, int64(3), attr(sp, plugin.AttrReporters).GetIntValue())

	sp = st.span(overflows)
	require.NotNil(t, sp)
	assert.True(t, attr(sp, plugin.AttrOverflow).GetBoolValue(), "one slot for three writers")
	assert.Equal(t, int64(2), attr(sp, plugin.AttrHopCount).GetIntValue(), "the host and r1")
}
