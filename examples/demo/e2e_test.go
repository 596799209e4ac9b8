//go:build e2e && linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/examples/demo/internal/jaegerui"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/roles"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/stack"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// e2eDelay is the delay added between porthos and aramis in the congestion phase.
const e2eDelay = 40 * time.Millisecond

func testRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	require.True(t, isModuleRoot(root), "repository root not found from %s", file)
	return root
}

// e2eOptions uses free ports everywhere: Jaeger's conformance suite or a
// leftover Jaeger may hold the fixed ones.
func e2eOptions(t *testing.T) Options {
	port := func() int {
		p, err := stack.FreePort("")
		require.NoError(t, err)
		return p
	}
	local := func() string { return "127.0.0.1:" + itoa(port()) }
	self, err := os.Executable()
	require.NoError(t, err)
	var logBuf syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo log:\n%s", logBuf.String())
		}
	})
	return Options{
		Requests: 2, Interval: 100 * time.Millisecond, NetemDelay: e2eDelay, Congestion: "auto",
		AramisDelayMin: time.Millisecond, AramisDelayMax: 3 * time.Millisecond,
		JaegerUI: local(), JaegerGRPC: local(), JaegerHealth: local(), JaegerOTLPPort: port(),
		StorageGRPC: local(), StorageAdmin: local(), CollectorPort: port(), AgentAdminPort: port(),
		Root: testRoot(t), DataDir: t.TempDir(), BinDir: t.TempDir(), Build: true,
		Self: []string{self}, TraceTimeout: 45 * time.Second,
		Log: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// demoNamespaces lists the namespaces that look like the demo's (they end in
// -athos, a role only this package uses).
func demoNamespaces(t *testing.T) []string {
	ents, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read /run/netns: %v", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "clt-") && strings.HasSuffix(e.Name(), "-athos") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestE2EDemo(t *testing.T) {
	netnstest.RequirePrivileged(t)
	before := demoNamespaces(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	opt := e2eOptions(t)

	d, err := Start(ctx, opt)
	require.NoError(t, err)
	names := []string{}
	for _, n := range d.topo.Nodes {
		names = append(names, n.Name)
	}
	bridge := d.mgmt.Bridge
	closed := false
	t.Cleanup(func() {
		if !closed {
			assert.NoError(t, d.Close())
		}
	})

	phases, err := d.RunScenario(ctx)
	var report bytes.Buffer
	for _, ph := range phases {
		printPhase(&report, ph)
	}
	t.Logf("demo output:\n%s", report.String())
	require.NoError(t, err)
	require.Len(t, phases, 4, "baseline, congestion, reroute, overflow")

	for _, ph := range phases {
		switch ph.Kind.API {
		case roles.PathRequest:
			require.Len(t, ph.Results, opt.Requests)
			require.Len(t, ph.Traces, opt.Requests)
			for _, r := range ph.Results {
				tr, raw, err := d.Jaeger.GetTrace(ctx, r.TraceID)
				require.NoError(t, err, "GET /api/traces/%s", r.TraceID)
				checkTrace(t, ph, r.TraceID, r.API.Subs[0].SpanID, r.API.Subs[1].SpanID, tr, raw)
			}
		case roles.PathReroute:
			checkReroute(t, ctx, d, ph)
		case roles.PathReport:
			checkOverflow(t, ctx, d, ph)
		}
	}

	// Tag search on a hop attribute finds the traces (Jaeger matches event attributes).
	last := phases[1].Results[len(phases[1].Results)-1].TraceID
	for _, tag := range []map[string]string{{"ioam.node_id": itoa(nodePorthos)}, {"ioam.namespace_id": itoa(ioamNamespace)}} {
		found, err := d.Jaeger.FindTraces(ctx, jaegerui.Query{Service: roleAthos, Tags: tag,
			Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Minute), Limit: 100})
		require.NoError(t, err)
		ids := []string{}
		for _, f := range found {
			ids = append(ids, f.TraceID)
		}
		assert.Contains(t, ids, last, "search %v", tag)
	}
	// Routers are services (named by their agents), so Jaeger's views list them.
	body, err := d.Jaeger.Get(ctx, "/api/services")
	require.NoError(t, err)
	var services struct{ Data []string }
	require.NoError(t, json.Unmarshal(body, &services))
	assert.Subset(t, services.Data, []string{rolePorthos, rolePlanchet, roleAramis, roleAthos, roleClient})

	// A node that is not on the path finds nothing.
	found, err := d.Jaeger.FindTraces(ctx, jaegerui.Query{Service: roleAthos, Tags: map[string]string{"ioam.node_id": "4242"},
		Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Minute), Limit: 100})
	require.NoError(t, err)
	assert.Empty(t, found)

	// athos applied the option on every sub-request and skipped none.
	resp, err := http.Get("http://" + hostPort(d.mgmt.Addr(roleAthos), 15123) + "/debug/clt")
	require.NoError(t, err)
	var st struct{ Applied, Skipped uint64 }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	_ = resp.Body.Close()
	assert.GreaterOrEqual(t, st.Applied, uint64(2*2*opt.Requests+2+1))
	assert.Zero(t, st.Skipped)

	// The same run in the real jaeger-ui, in a real browser.
	t.Run("ui", func(t *testing.T) { checkUI(t, d, phases) })

	// Close removes every namespace and the bridge.
	require.NoError(t, d.Close())
	closed = true
	for _, n := range names {
		_, err := os.Stat(filepath.Join("/run/netns", n))
		assert.True(t, os.IsNotExist(err), "namespace %s left behind", n)
	}
	assert.NoError(t, deleteLink(bridge)) // nil when absent
	_, err = os.Stat(filepath.Join("/sys/class/net", bridge))
	assert.True(t, os.IsNotExist(err), "bridge %s left behind", bridge)
	assert.ElementsMatch(t, before, demoNamespaces(t))
}

func checkTrace(t *testing.T, ph *Phase, traceID, checkID, validateID string, tr *jaegerui.Trace, raw []byte) {
	t.Helper()
	ok := t.Run(ph.Name+"/"+traceID, func(t *testing.T) {
		ops, network := map[string]int{}, map[string]int{}
		for i := range tr.Spans {
			s := &tr.Spans[i]
			if s.Synthetic() {
				network[s.ParentID()+" "+tr.Service(s)+" "+s.OperationName]++
				continue
			}
			ops[tr.Service(s)+" "+s.OperationName]++
		}
		assert.Equal(t, map[string]int{
			"client client request": 1, "athos GET /api/request": 1,
			"athos GET /check": 1, "athos GET /validate": 1,
			"aramis GET /check": 1, "aramis GET /validate": 1,
		}, ops)
		// clt-storage's network spans: one per link, under each sub-request
		// span, in the service of the router that received the packet.
		want := map[string]int{}
		for _, id := range []string{checkID, validateID} {
			want[id+" "+rolePorthos+" "+plugin.NetworkSpanName(roleAthos, rolePorthos)] = 1
			want[id+" "+roleAramis+" "+plugin.NetworkSpanName(rolePorthos, roleAramis)] = 1
		}
		assert.Equal(t, want, network)

		for _, id := range []string{checkID, validateID} {
			s, found := tr.Span(id)
			require.True(t, found, "sub-request span %s", id)
			hc, ok := s.TagInt("ioam.hop_count")
			require.True(t, ok, "ioam.hop_count on %s", s.OperationName)
			assert.GreaterOrEqual(t, hc, int64(2))
			ns, ok := s.TagInt("ioam.namespace_id")
			require.True(t, ok, "ioam.namespace_id on %s", s.OperationName)
			assert.Equal(t, int64(ioamNamespace), ns)

			byNode := map[int64]jaegerui.Hop{}
			for _, h := range s.Hops() {
				byNode[h.NodeID] = h
			}
			ath, ok := byNode[nodeAthos]
			require.True(t, ok, "%s: no ioam.hop for athos (hop 0, its own entry)", s.OperationName)
			assert.Equal(t, int64(ifAthosToPorthos), ath.EgressIf, "athos's own entry names its egress interface")
			p, ok := byNode[nodePorthos]
			require.True(t, ok, "%s: no ioam.hop for porthos", s.OperationName)
			a, ok := byNode[nodeAramis]
			require.True(t, ok, "%s: no ioam.hop for aramis", s.OperationName)
			assert.Equal(t, int64(ifPorthosFromAthos), p.IngressIf)
			assert.Equal(t, int64(ifPorthosToAramis), p.EgressIf)
			assert.Equal(t, int64(ifAramisFromPorth), a.IngressIf)
			require.False(t, p.Time.IsZero(), "porthos ioam.timestamp")
			require.False(t, a.Time.IsZero(), "aramis ioam.timestamp")
			delta := a.Time.Sub(p.Time)
			assert.GreaterOrEqual(t, delta, time.Duration(0), "aramis after porthos")
			if ph.Netem > 0 {
				assert.GreaterOrEqual(t, delta, ph.Netem, "%s: porthos → aramis must take at least the added delay", s.OperationName)
			}
		}
	})
	if !ok {
		t.Logf("trace JSON: %s", raw)
	}
}

// checkReroute: the /data span's packets took porthos → aramis, then
// porthos → planchet → aramis; clt-storage says so once.
func checkReroute(t *testing.T, ctx context.Context, d *Demo, ph *Phase) {
	t.Helper()
	require.Len(t, ph.Results, 1)
	r := ph.Results[0]
	require.Len(t, r.API.Subs, 2, "two requests")
	require.Equal(t, r.API.Subs[0].SpanID, r.API.Subs[1].SpanID, "one span")
	require.Equal(t, r.API.Subs[0].LocalAddr, r.API.Subs[1].LocalAddr, "one connection")
	tr, raw, err := d.Jaeger.GetTrace(ctx, r.TraceID)
	require.NoError(t, err)
	ok := t.Run("reroute/"+r.TraceID, func(t *testing.T) {
		s, found := tr.Span(r.API.Subs[0].SpanID)
		require.True(t, found)
		byNode := map[int64]jaegerui.Hop{}
		for _, h := range s.Hops() {
			byNode[h.NodeID] = h
		}
		require.Contains(t, byNode, int64(nodePlanchet), "the canonical path is the longer one, through planchet")
		assert.Equal(t, int64(ifPorthosToPlanch), byNode[nodePorthos].EgressIf)
		assert.Equal(t, int64(ifPlanchetFromPort), byNode[nodePlanchet].IngressIf)
		assert.Equal(t, int64(ifAramisFromPlanch), byNode[nodeAramis].IngressIf)
		n, _ := s.TagInt(plugin.AttrReporters)
		assert.Equal(t, int64(3), n)
		// The detour is not congested: its links take well under the delay
		// of the direct link the first request crossed.
		links := 0
		for i := range tr.Spans {
			ns := &tr.Spans[i]
			if !ns.Synthetic() || ns.ParentID() != s.SpanID {
				continue
			}
			switch ns.OperationName {
			case plugin.NetworkSpanName(rolePorthos, rolePlanchet), plugin.NetworkSpanName(rolePlanchet, roleAramis):
				links++
				assert.Less(t, time.Duration(ns.Duration)*time.Microsecond, e2eDelay/2, "%s: %d µs", ns.OperationName, ns.Duration)
			}
		}
		assert.Equal(t, 2, links, "network spans porthos → planchet → aramis")
		var changed []string
		for _, w := range s.Warnings {
			if strings.HasPrefix(w, plugin.WarnPathChanged) {
				changed = append(changed, w)
			}
		}
		assert.Len(t, changed, 1, "one path-change warning: %q", s.Warnings)
		assert.Equal(t, "direct", routeVia(t, d), "the route is back after the call")
	})
	if !ok {
		t.Logf("trace JSON: %s", raw)
	}
}

func routeVia(t *testing.T, d *Demo) string {
	resp, err := http.Get(d.routes.url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var st struct{ Via string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st.Via
}

// checkOverflow: one hop slot for two IOAM nodes: porthos filled it, aramis
// found the trace full, and the span says so.
func checkOverflow(t *testing.T, ctx context.Context, d *Demo, ph *Phase) {
	t.Helper()
	require.Len(t, ph.Results, 1)
	r := ph.Results[0]
	require.Len(t, r.API.Subs, 1)
	tr, raw, err := d.Jaeger.GetTrace(ctx, r.TraceID)
	require.NoError(t, err)
	ok := t.Run("overflow/"+r.TraceID, func(t *testing.T) {
		s, found := tr.Span(r.API.Subs[0].SpanID)
		require.True(t, found)
		var nodes []int64
		for _, h := range s.Hops() {
			nodes = append(nodes, h.NodeID)
		}
		assert.Equal(t, []int64{nodeAthos, nodePorthos}, nodes, "aramis had no slot left")
		ov, ok := s.Tag(plugin.AttrOverflow)
		require.True(t, ok, "%s on the span", plugin.AttrOverflow)
		assert.Equal(t, "true", ov.String())
		var warns []string
		for _, w := range s.Warnings {
			if strings.HasPrefix(w, plugin.WarnOverflow) {
				warns = append(warns, w)
			}
		}
		assert.Len(t, warns, 1, "one overflow warning: %q", s.Warnings)
	})
	if !ok {
		t.Logf("trace JSON: %s", raw)
	}
}

// TestE2EStartFailureCleansUp: a component that dies at start must not leave
// namespaces or processes behind.
func TestE2EStartFailureCleansUp(t *testing.T) {
	netnstest.RequirePrivileged(t)
	before := demoNamespaces(t)
	opt := e2eOptions(t)
	opt.JaegerBin = "/bin/false" // "Jaeger" exits at once
	d, err := Start(t.Context(), opt)
	require.Error(t, err)
	require.Nil(t, d)
	assert.Contains(t, err.Error(), "jaeger exited")
	assert.ElementsMatch(t, before, demoNamespaces(t))
	_, err = os.Stat(filepath.Join(opt.DataDir, "state.json"))
	assert.True(t, os.IsNotExist(err), "state file removed after a clean teardown")
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
