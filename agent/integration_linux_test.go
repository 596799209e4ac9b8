package agent

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

const (
	itNamespace = 123
	itPort      = 7000
)

var itServerAddr = netip.MustParseAddr("fd00:3::2")

// storage is an in-process clt-storage on loopback that can be restarted on
// the same ports and data directory.
type storage struct {
	t         testing.TB
	dir       string
	collector string
	spans     string
	srv       *plugin.Server
}

func startStorage(t testing.TB) *storage {
	t.Helper()
	s := &storage{t: t, dir: t.TempDir(), collector: "127.0.0.1:0", spans: "127.0.0.1:0"}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *storage) start() {
	s.t.Helper()
	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen = s.spans
	cfg.Collector.Listen = s.collector
	cfg.Admin.Listen = ""
	cfg.Store.Dir = s.dir
	cfg.ShutdownTimeout = time.Second
	srv, err := plugin.New(cfg, plugin.Settings{})
	require.NoError(s.t, err)
	require.NoError(s.t, srv.Start(s.t.Context()))
	s.srv = srv
	s.collector, s.spans = srv.CollectorAddr().String(), srv.StorageAddr().String()
}

func (s *storage) stop() {
	if s.srv != nil {
		require.NoError(s.t, s.srv.Close())
		s.srv = nil
	}
}

func (s *storage) conn() *grpc.ClientConn {
	s.t.Helper()
	c, err := grpc.NewClient(s.spans, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// writeSpans stores one span per IDs so GetTraces has something to enrich.
func (s *storage) writeSpans(ids []ioam6.IDs) {
	s.t.Helper()
	now := uint64(time.Now().UnixNano())
	var spans []*tracepb.Span
	for i, id := range ids {
		spans = append(spans, &tracepb.Span{
			TraceId: append([]byte(nil), id.TraceID[:]...), SpanId: append([]byte(nil), id.SpanID[:]...),
			Name: "span-" + strconv.Itoa(i), Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: now - 1e9, EndTimeUnixNano: now,
		})
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "clt-agent-it"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
	_, err := coltracepb.NewTraceServiceClient(s.conn()).Export(s.t.Context(), req)
	require.NoError(s.t, err)
}

// span returns the enriched span (nil if the trace is unknown).
func (s *storage) span(id ioam6.IDs) *tracepb.Span {
	s.t.Helper()
	stream, err := storagev2.NewTraceReaderClient(s.conn()).GetTraces(s.t.Context(),
		&storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id.TraceID[:]}}})
	require.NoError(s.t, err)
	for {
		td, err := stream.Recv()
		if err != nil {
			return nil
		}
		for _, rs := range td.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					if [8]byte(sp.GetSpanId()) == id.SpanID {
						return sp
					}
				}
			}
		}
	}
}

func attr(sp *tracepb.Span, key string) *commonpb.AnyValue {
	for _, kv := range sp.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return nil
}

// sender sends UDP datagrams with a per-datagram IPV6_HOPOPTS cmsg from the
// client's namespace (docs/wire-format.md §3.2).
type sender struct {
	fd  int
	dst unix.SockaddrInet6
}

func newSender(t testing.TB, client *netnstest.Node, dst netip.Addr) *sender {
	t.Helper()
	s := &sender{fd: -1, dst: unix.SockaddrInet6{Port: itPort, Addr: dst.As16()}}
	require.NoError(t, client.Do(func() error {
		var err error
		s.fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	}))
	t.Cleanup(func() { _ = unix.Close(s.fd) })
	return s
}

func (s *sender) send(hbh []byte, n int) error {
	oob := make([]byte, unix.CmsgSpace(len(hbh)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS
	h.SetLen(unix.CmsgLen(len(hbh)))
	copy(oob[unix.CmsgLen(0):], hbh)
	payload := []byte("clt-agent integration")
	for range n {
		if err := unix.Sendmsg(s.fd, payload, oob, &s.dst, 0); err != nil {
			if err == unix.ENOBUFS || err == unix.EAGAIN {
				time.Sleep(time.Millisecond)
				continue
			}
			return err
		}
	}
	return nil
}

// testHBH is the encapsulator's header: oss carrier, type 0xF00000 (+ bit
// 22), room for 4 transit hops, the client (node 1) as its own entry.
func testHBH(t testing.TB, ids ioam6.IDs) []byte {
	t.Helper()
	now := time.Now()
	spec := ioam6.HBHSpec{
		NamespaceID: itNamespace,
		Type:        ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac,
		Slots:       4,
		Carrier:     ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS},
		Own: ioam6.Node{HopLimit: 64, NodeID: 1, IngressIf: 0xFFFF, EgressIf: 10,
			TimestampSec: uint32(now.Unix()), TimestampFrac: uint32(now.Nanosecond() / 1000)},
	}
	hbh, err := ioam6.AppendHBH(nil, spec, ids)
	require.NoError(t, err)
	return hbh
}

func itIDs(run byte, i int) ioam6.IDs {
	var id ioam6.IDs
	id.TraceID[0], id.TraceID[1] = 0xc1, run
	binary.BigEndian.PutUint32(id.TraceID[12:], uint32(i+1))
	id.SpanID[0] = 0x5a
	binary.BigEndian.PutUint32(id.SpanID[4:], uint32(i+1))
	return id
}

// chain builds client - r1 - r2 - server with IOAM namespace 123 and a UDP
// sink on the server.
func chain(t testing.TB) *netnstest.Topology { return chainN(t, 2) }

// chainN is chain with n routers; the server's address is
// topo.Node("server").Addr("s0").
func chainN(t testing.TB, routers int) *netnstest.Topology {
	t.Helper()
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: routers, IOAMNamespace: itNamespace}))
	server := topo.Node("server")
	pc, err := server.ListenPacket("udp6", fmt.Sprintf("[%s]:%d", server.Addr("s0"), itPort))
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return topo
}

// startAgents runs one in-process agent per IOAM node after the client, each
// with its kernel side in the node's namespace, reporting to collector.
func startAgents(t *testing.T, topo *netnstest.Topology, collector string, mod func(*Config)) map[string]*Agent {
	t.Helper()
	return startAgentsOn(t, topo, []string{"r1", "r2", "server"}, collector, mod)
}

// startAgentsOn is startAgents on the given roles.
func startAgentsOn(t *testing.T, topo *netnstest.Topology, roles []string, collector string, mod func(*Config)) map[string]*Agent {
	t.Helper()
	agents := map[string]*Agent{}
	for _, role := range roles {
		cfg := DefaultConfig()
		cfg.AgentID = role
		cfg.NetNSPath = topo.Node(role).Path
		cfg.Source.Kind = SourceNetlink
		cfg.Namespaces = []NamespaceConfig{{ID: itNamespace}}
		cfg.Aggregation.Window = time.Minute // records leave on shutdown unless mod says otherwise
		cfg.Export.Collector = collector
		cfg.Export.BackoffInitial = 10 * time.Millisecond
		cfg.Export.BackoffMax = 200 * time.Millisecond
		cfg.Export.ShutdownTimeout = 10 * time.Second
		cfg.Admin.Listen = ""
		if mod != nil {
			mod(&cfg)
		}
		a, err := New(cfg, Settings{Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		require.NoError(t, a.Start(t.Context()), role)
		t.Cleanup(func() { _ = a.Close() })
		agents[role] = a
	}
	return agents
}

func closeAgents(t *testing.T, agents map[string]*Agent) {
	t.Helper()
	for role, a := range agents {
		require.NoError(t, a.Close(), role)
	}
}

func waitDecoded(t *testing.T, agents map[string]*Agent, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for role, a := range agents {
		for testutil.ToFloat64(a.Metrics().EventsDecoded) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s decoded %v events, want %v", role, testutil.ToFloat64(a.Metrics().EventsDecoded), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestIntegrationAgentsReportTraffic: the stored records match what was sent:
// IDs, the four-node path, and packet counts.
func TestIntegrationAgentsReportTraffic(t *testing.T) {
	topo := chain(t)
	st := startStorage(t)
	agents := startAgents(t, topo, st.collector, nil)
	for role, a := range agents {
		assert.EqualValues(t, map[string]int{"r1": 2, "r2": 3, "server": 4}[role], a.LocalNodeID(), "node id read from the node's sysctl")
	}
	snd := newSender(t, topo.Node("client"), itServerAddr)

	counts := []int{1, 7, 50}
	var ids []ioam6.IDs
	total := 0
	for i, n := range counts {
		id := itIDs(1, i)
		ids = append(ids, id)
		require.NoError(t, snd.send(testHBH(t, id), n))
		total += n
	}
	st.writeSpans(ids)
	waitDecoded(t, agents, float64(total))
	closeAgents(t, agents)

	for role, a := range agents {
		m := a.Metrics()
		assert.Equal(t, float64(len(counts)), testutil.ToFloat64(m.RecordsExported), role)
		assert.Zero(t, testutil.ToFloat64(m.EventsLost.WithLabelValues(SourceNetlink)), role)
		assert.Zero(t, testutil.ToFloat64(m.EventsMalformed.WithLabelValues(ReasonCarrier)), role)
	}
	for i, id := range ids {
		sp := st.span(id)
		require.NotNil(t, sp, "span %d", i)
		assert.Equal(t, int64(counts[i]), attr(sp, plugin.AttrPackets).GetIntValue(), "span %d packets", i)
		assert.Equal(t, "1 > 2 > 3 > 4", attr(sp, plugin.AttrPath).GetStringValue(), "span %d path", i)
		assert.Equal(t, int64(4), attr(sp, plugin.AttrHopCount).GetIntValue())
		assert.Equal(t, int64(3), attr(sp, plugin.AttrReporters).GetIntValue())
		assert.Equal(t, int64(itNamespace), attr(sp, plugin.AttrNamespaceID).GetIntValue())
		var hops []int64
		for _, ev := range sp.GetEvents() {
			if plugin.IsHopEvent(ev.GetName()) {
				for _, kv := range ev.GetAttributes() {
					if kv.GetKey() == plugin.AttrNodeID {
						hops = append(hops, kv.GetValue().GetIntValue())
					}
				}
			}
		}
		assert.Equal(t, []int64{1, 2, 3, 4}, hops, "span %d hop events", i)
	}
}

// TestIntegrationStorageRestart: clt-storage is stopped mid-run and restarted
// on the same address and data; agents keep the unacknowledged batches and
// no record is lost while the queue bound holds.
func TestIntegrationStorageRestart(t *testing.T) {
	topo := chain(t)
	st := startStorage(t)
	agents := startAgents(t, topo, st.collector, func(c *Config) {
		c.Aggregation.Window = 50 * time.Millisecond
		c.Export.BatchMaxRecords = 4
		c.Export.BatchMaxDelay = 20 * time.Millisecond
	})
	snd := newSender(t, topo.Node("client"), itServerAddr)

	const spans, perSpan = 30, 3
	var ids []ioam6.IDs
	sent := 0
	send := func(from, to int) {
		for i := from; i < to; i++ {
			id := itIDs(2, i)
			ids = append(ids, id)
			require.NoError(t, snd.send(testHBH(t, id), perSpan))
			sent += perSpan
			time.Sleep(5 * time.Millisecond)
		}
	}
	send(0, 10)
	waitDecoded(t, agents, float64(sent))
	st.stop() // storage down: agents queue and retry
	send(10, 20)
	waitDecoded(t, agents, float64(sent))
	time.Sleep(300 * time.Millisecond) // several failed attempts
	for role, a := range agents {
		assert.Positive(t, testutil.ToFloat64(a.Metrics().BatchesSent.WithLabelValues("error")), role)
	}
	st.start()
	send(20, spans)
	waitDecoded(t, agents, float64(sent))
	closeAgents(t, agents)

	for role, a := range agents {
		m := a.Metrics()
		flushed := testutil.ToFloat64(m.RecordsFlushed)
		assert.Equal(t, flushed, testutil.ToFloat64(m.RecordsExported), "%s: every record acknowledged", role)
		assert.Positive(t, testutil.ToFloat64(m.RecordsRetried), role)
		for _, r := range []string{DropQueueFull, DropRejected, DropShutdown} {
			assert.Zero(t, testutil.ToFloat64(m.RecordsDropped.WithLabelValues(r)), "%s dropped %s", role, r)
		}
	}
	st.writeSpans(ids)
	for i, id := range ids {
		sp := st.span(id)
		require.NotNil(t, sp, "span %d", i)
		assert.Equal(t, int64(perSpan), attr(sp, plugin.AttrPackets).GetIntValue(), "span %d", i)
		assert.Equal(t, int64(3), attr(sp, plugin.AttrReporters).GetIntValue(), "span %d reporters", i)
	}
}

// TestIntegrationQueueBoundDropsCounted: with the storage down longer than
// the queue holds, the oldest batches are dropped and counted, the rest is
// delivered after the restart.
func TestIntegrationQueueBoundDropsCounted(t *testing.T) {
	topo := chain(t)
	st := startStorage(t)
	st.stop()
	agents := startAgents(t, topo, st.collector, func(c *Config) {
		c.Aggregation.Window = 20 * time.Millisecond
		c.Export.BatchMaxRecords = 1
		c.Export.BatchMaxDelay = 10 * time.Millisecond
		c.Export.QueueMaxBatches = 3
		c.Export.BackoffMax = 50 * time.Millisecond
	})
	snd := newSender(t, topo.Node("client"), itServerAddr)
	const spans = 12
	for i := range spans {
		require.NoError(t, snd.send(testHBH(t, itIDs(3, i)), 1))
		time.Sleep(30 * time.Millisecond) // one record per span and window
	}
	waitDecoded(t, agents, spans)
	time.Sleep(100 * time.Millisecond)
	st.start()
	closeAgents(t, agents)
	for role, a := range agents {
		m := a.Metrics()
		flushed := testutil.ToFloat64(m.RecordsFlushed)
		dropped := testutil.ToFloat64(m.RecordsDropped.WithLabelValues(DropQueueFull))
		exported := testutil.ToFloat64(m.RecordsExported)
		assert.Equal(t, float64(spans), flushed, role)
		assert.Positive(t, dropped, "%s: the bound was exceeded", role)
		assert.Equal(t, flushed, exported+dropped, "%s: every record is either acknowledged or counted as dropped", role)
		assert.LessOrEqual(t, exported, float64(3+1+1), "%s: queue bound + in-flight + open batch", role)
	}
}

// TestIntegrationMalformedCounted injects IOAM packets the kernel lets through
// to the event but the agent cannot use; they are counted by reason and the
// agent keeps reporting good traffic.
func TestIntegrationMalformedCounted(t *testing.T) {
	topo := chain(t)
	st := startStorage(t)
	// r1 also knows namespace 124, which the agents are not configured for.
	conn, err := topo.Node("r1").IOAM()
	require.NoError(t, err)
	require.NoError(t, conn.AddNamespace(t.Context(), ioam6nl.Namespace{ID: 124}))
	require.NoError(t, conn.Close())
	agents := startAgents(t, topo, st.collector, nil)
	snd := newSender(t, topo.Node("client"), itServerAddr)

	good := itIDs(4, 0)
	base := testHBH(t, good)
	optEnd := 4 + 2 + int(base[5]) // the IOAM option sits at offset 4
	snap := optEnd - ioam6.IDLen - 4
	mutate := func(f func(b []byte)) []byte {
		b := append([]byte(nil), base...)
		f(b)
		return b
	}
	cases := []struct {
		name   string
		hbh    []byte
		reason string
	}{
		{"wrong schema", mutate(func(b []byte) { b[snap+3] ^= 0xff }), ReasonCarrier},
		{"carrier length 5 words", mutate(func(b []byte) { b[snap] = 5 }), ReasonTruncated},
		{"snapshot past the end", mutate(func(b []byte) { b[snap] = 40 }), ReasonSnapshot},
		{"all-zero ids", testHBH(t, ioam6.IDs{}), ReasonCarrier},
		{"unconfigured namespace", mutate(func(b []byte) { b[9] = 124 }), ReasonUnconfiguredNamespace},
	}
	// What the kernel itself drops never reaches the agent (docs/wire-format.md §9).
	nodeLen := mutate(func(b []byte) { b[10] = 5 << 3 })
	require.NoError(t, snd.send(nodeLen, 3))

	for _, c := range cases {
		require.NoError(t, snd.send(c.hbh, 2), c.name)
	}
	require.NoError(t, snd.send(base, 5))
	st.writeSpans([]ioam6.IDs{good})
	r1 := agents["r1"].Metrics()
	waitDecoded(t, agents, 5)
	want := map[string]float64{}
	for _, c := range cases {
		want[c.reason] += 2
	}
	for reason, n := range want {
		assert.Equal(t, n, testutil.ToFloat64(r1.EventsMalformed.WithLabelValues(reason)), "r1 reason %s", reason)
	}
	assert.Equal(t, 5.0, testutil.ToFloat64(r1.EventsDecoded), "the kernel dropped the NodeLen packets; good ones decode")
	closeAgents(t, agents)
	sp := st.span(good)
	require.NotNil(t, sp)
	assert.Equal(t, int64(5), attr(sp, plugin.AttrPackets).GetIntValue())
	assert.Equal(t, "1 > 2 > 3 > 4", attr(sp, plugin.AttrPath).GetStringValue())
}

// TestIntegrationCaptureSource runs r1's agent on the packet-capture source:
// egress copies include r1's own hop.
func TestIntegrationCaptureSource(t *testing.T) {
	topo := chain(t)
	st := startStorage(t)
	cfg := DefaultConfig()
	cfg.AgentID = "r1-capture"
	cfg.NetNSPath = topo.Node("r1").Path
	cfg.Source.Kind = SourceCapture
	cfg.Source.Interfaces = []string{"r1b"}
	cfg.Namespaces = []NamespaceConfig{{ID: itNamespace}}
	cfg.Aggregation.Window = time.Minute
	cfg.Export.Collector = st.collector
	cfg.Admin.Listen = ""
	a, err := New(cfg, Settings{})
	require.NoError(t, err)
	require.NoError(t, a.Start(t.Context()))
	t.Cleanup(func() { _ = a.Close() })

	snd := newSender(t, topo.Node("client"), itServerAddr)
	id := itIDs(5, 0)
	require.NoError(t, snd.send(testHBH(t, id), 9))
	waitDecoded(t, map[string]*Agent{"r1": a}, 9)
	require.NoError(t, a.Close())
	m := a.Metrics()
	assert.Equal(t, 9.0, testutil.ToFloat64(m.EventsReceived.WithLabelValues(SourceCapture)))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.RecordsExported))
	st.writeSpans([]ioam6.IDs{id})
	sp := st.span(id)
	require.NotNil(t, sp)
	assert.Equal(t, "1 > 2", attr(sp, plugin.AttrPath).GetStringValue(), "r1's egress copy holds the host and r1")
	assert.Equal(t, int64(9), attr(sp, plugin.AttrPackets).GetIntValue())
}

// TestIntegrationKernelLossCounted: with a tiny receive buffer and a long
// batch wait the kernel drops events (ENOBUFS); the agent counts the loss
// and keeps going.
func TestIntegrationKernelLossCounted(t *testing.T) {
	topo := chain(t)
	st := startStorage(t)
	a := startAgents(t, topo, st.collector, func(c *Config) {
		c.Source.ReceiveBuffer = 4096
		c.Source.BatchWait = 300 * time.Millisecond
	})["server"]
	snd := newSender(t, topo.Node("client"), itServerAddr)
	id := itIDs(6, 0)
	// Wake the reader, then burst while it sleeps.
	require.NoError(t, snd.send(testHBH(t, id), 1))
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, snd.send(testHBH(t, id), 2000))
	m := a.Metrics()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.EventsLost.WithLabelValues(SourceNetlink)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Positive(t, testutil.ToFloat64(m.EventsLost.WithLabelValues(SourceNetlink)), "ENOBUFS counted")
	received := testutil.ToFloat64(m.EventsReceived.WithLabelValues(SourceNetlink))
	assert.Less(t, received, 2001.0)
	assert.Positive(t, received)
	// Still working after the overrun.
	require.NoError(t, snd.send(testHBH(t, itIDs(6, 1)), 1))
	waitDecoded(t, map[string]*Agent{"server": a}, received+1)
}
