//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/agent"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/jaegerui"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/roles"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// TestMain lets the test binary play the demo's roles: the orchestrator
// started by the e2e test re-runs os.Executable() with CLT_DEMO_ROLE set.
func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(roleMain(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	o, c, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.False(t, c.oneShot)
	assert.Equal(t, "127.0.0.1:16686", o.JaegerUI)
	assert.Equal(t, 4317, o.JaegerOTLPPort)
	assert.Equal(t, "127.0.0.1:17271", o.StorageGRPC)
	assert.Equal(t, 7123, o.CollectorPort)
	assert.Equal(t, "auto", o.Congestion)
	assert.True(t, o.Build)

	_, _, err = parseFlags([]string{"-requests", "0", "-congestion", "tc", "-jaeger-ui", "nope"}, io.Discard)
	require.Error(t, err)
	for _, want := range []string{"-requests", "-congestion", "-jaeger-ui"} {
		assert.Contains(t, err.Error(), want)
	}
}

func fakeDemo(t *testing.T) *Demo {
	prefix := netip.MustParsePrefix("fd00:c17:abcd::/64")
	m := &mgmtNet{Prefix: prefix, Host: hostN(prefix, 1), nodes: map[string]netip.Addr{}}
	for role, i := range mgmtRoleIndex {
		m.nodes[role] = hostN(prefix, i)
	}
	return &Demo{mgmt: m, opt: Options{AgentAdminPort: 17272, DataDir: t.TempDir()}}
}

// The generated agent configs must load back through clt-agent's own loader
// (unknown keys are errors there) and carry the node setup the demo relies on.
func TestAgentConfigRoundTrip(t *testing.T) {
	d := fakeDemo(t)
	for _, tc := range []struct {
		role   string
		node   uint32
		ifaces map[string]uint32
	}{
		{rolePorthos, nodePorthos, map[string]uint32{"athos0": ifPorthosFromAthos, "aramis0": ifPorthosToAramis, "planchet0": ifPorthosToPlanch}},
		{roleAramis, nodeAramis, map[string]uint32{"porthos0": ifAramisFromPorth, "planchet0": ifAramisFromPlanch}},
		{rolePlanchet, nodePlanchet, map[string]uint32{"porthos0": ifPlanchetFromPort, "aramis0": ifPlanchetToAramis}},
	} {
		t.Run(tc.role, func(t *testing.T) {
			path := filepath.Join(d.opt.DataDir, tc.role+".yaml")
			require.NoError(t, writeYAML(path, d.agentConfig(tc.role, "[fd00:c17:abcd::1]:7123")))
			cfg, err := agent.LoadConfig(path)
			require.NoError(t, err)
			require.NoError(t, cfg.Validate())
			require.NotNil(t, cfg.Setup)
			assert.Equal(t, tc.node, *cfg.Setup.NodeID)
			assert.Equal(t, tc.role, cfg.NodeName, "the router is named by its agent")
			got := map[string]uint32{}
			for _, i := range cfg.Setup.Interfaces {
				require.NotNil(t, i.ID)
				got[i.Name] = *i.ID
			}
			assert.Equal(t, tc.ifaces, got)
			assert.Equal(t, "[fd00:c17:abcd::1]:7123", cfg.Export.Collector)
			assert.Equal(t, "["+d.mgmt.Addr(tc.role).String()+"]:17272", cfg.Admin.Listen)
			require.Len(t, cfg.Namespaces, 1)
			assert.Equal(t, uint32(ioamNamespace), cfg.Namespaces[0].ID)
		})
	}
}

func TestStorageConfigRoundTrip(t *testing.T) {
	d := fakeDemo(t)
	d.opt.StorageGRPC, d.opt.StorageAdmin = "127.0.0.1:17271", "127.0.0.1:17270"
	cfg := d.storageConfig("[fd00:c17:abcd::1]:7123")
	path := filepath.Join(t.TempDir(), "s.yaml")
	require.NoError(t, writeYAML(path, cfg))
	back, err := plugin.LoadConfig(path)
	require.NoError(t, err)
	require.NoError(t, back.Validate())
	assert.Equal(t, cfg.Collector.Listen, back.Collector.Listen)
	assert.Equal(t, cfg.Store.Dir, back.Store.Dir)
	assert.Equal(t, map[string]string{"1": "athos"}, back.Nodes, "athos (no agent) is named in nodes:")
}

func TestCLTFlagsConfig(t *testing.T) {
	c := cltFlags{namespace: 123, slots: 4, traceType: 0xF00000, carrier: "oss", schemaID: 0xC17}
	cfg, err := c.config()
	require.NoError(t, err)
	assert.Equal(t, uint16(123), cfg.Namespace)
	assert.True(t, cfg.Strict, "the demo must not silently send without IOAM")

	c.carrier = "nope"
	_, err = c.config()
	require.Error(t, err)
}

func TestReportDelta(t *testing.T) {
	var buf bytes.Buffer
	ph := &Phase{Name: "x", Kind: kindRequest, Netem: 30 * time.Millisecond, DelayBy: "wire"}
	printPhase(&buf, ph)
	assert.Contains(t, buf.String(), `phase "x" — wire delay 30ms on porthos → aramis`)
}

func hopLog(index, node, in, out int64, ts string) jaegerui.Log {
	n := func(v int64) json.Number { return json.Number(strconv.FormatInt(v, 10)) }
	return jaegerui.Log{Fields: []jaegerui.KeyValue{
		{Key: "event", Type: "string", Value: plugin.EventHopPrefix + strconv.FormatInt(index, 10)},
		{Key: plugin.AttrHopIndex, Type: "int64", Value: n(index)},
		{Key: plugin.AttrNodeID, Type: "int64", Value: n(node)},
		{Key: plugin.AttrIngressIf, Type: "int64", Value: n(in)},
		{Key: plugin.AttrEgressIf, Type: "int64", Value: n(out)},
		{Key: plugin.AttrTimestamp, Type: "string", Value: ts},
	}}
}

func TestCompleteAndHopDelta(t *testing.T) {
	r := roles.ClientResult{TraceID: "t", API: roles.APIResponse{Subs: []roles.SubResult{
		{Path: "/check", SpanID: "c1"}, {Path: "/validate", SpanID: "v1"}}}}
	tr := &jaegerui.Trace{TraceID: "t"}
	for _, id := range []string{"root", "api", "c1", "v1", "s1", "s2"} {
		tr.Spans = append(tr.Spans, jaegerui.Span{SpanID: id})
	}
	ok, why := complete(tr, kindRequest, r)
	assert.False(t, ok)
	assert.Contains(t, why, "/check")

	for i := range tr.Spans {
		if s := &tr.Spans[i]; s.SpanID == "c1" || s.SpanID == "v1" {
			s.Logs = []jaegerui.Log{
				hopLog(1, nodePorthos, ifPorthosFromAthos, ifPorthosToAramis, "2026-11-27T10:00:00.000100Z"),
				hopLog(2, nodeAramis, ifAramisFromPorth, 65535, "2026-11-27T10:00:00.050350Z"),
			}
		}
	}
	ok, why = complete(tr, kindRequest, r)
	assert.False(t, ok)
	assert.Contains(t, why, "of 2 agents reported", "porthos's own report has not arrived")
	for i := range tr.Spans {
		if s := &tr.Spans[i]; s.SpanID == "c1" || s.SpanID == "v1" {
			s.Tags = []jaegerui.KeyValue{{Key: "ioam.reporters", Type: "int64", Value: json.Number("2")}}
		}
	}
	ok, why = complete(tr, kindRequest, r)
	assert.True(t, ok, why)
	d, ok := hopDelta(tr, "c1")
	require.True(t, ok)
	assert.Equal(t, 50250*time.Microsecond, d)
	_, ok = hopDelta(tr, "root")
	assert.False(t, ok)

	tr.Spans = tr.Spans[:5]
	ok, _ = complete(tr, kindRequest, r)
	assert.False(t, ok, "a missing server span leaves the trace incomplete")
}

func TestCheckFree(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = checkFree(map[string]string{"-jaeger-ui": ln.Addr().String(), "-storage-grpc": "127.0.0.1:0"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "-jaeger-ui")
	assert.NotContains(t, err.Error(), "-storage-grpc")
}

func TestResolveUIAssets(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repo")
	build := filepath.Join(root, "..", "shared", "jaeger-ui", "build")
	require.NoError(t, os.MkdirAll(root, 0o755))
	t.Setenv(envUIAssets, "")

	// Nothing anywhere: the placeholder, no error.
	o := Options{Root: root}
	require.NoError(t, o.resolveUIAssets())
	assert.Empty(t, o.UIAssets)

	// CI's copy next to the repository is picked up.
	require.NoError(t, os.MkdirAll(build, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(build, "index.html"), []byte("<html>"), 0o644))
	o = Options{Root: root}
	require.NoError(t, o.resolveUIAssets())
	assert.Equal(t, filepath.Clean(build), o.UIAssets)

	// An explicit directory without a build is an error, from the flag or the env.
	empty := t.TempDir()
	o = Options{Root: root, UIAssets: empty}
	err := o.resolveUIAssets()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "index.html")
	t.Setenv(envUIAssets, empty)
	o = Options{Root: root}
	require.Error(t, o.resolveUIAssets())
	t.Setenv(envUIAssets, build)
	o = Options{Root: root}
	require.NoError(t, o.resolveUIAssets())
	assert.Equal(t, filepath.Clean(build), o.UIAssets)
}

func TestPrintHelpLinks(t *testing.T) {
	phases := []*Phase{
		{Name: "baseline", Kind: kindRequest, Results: []roles.ClientResult{{TraceID: "b0"}}},
		{Name: "congestion", Kind: kindRequest, Netem: 50 * time.Millisecond, Results: []roles.ClientResult{{TraceID: "c0"}, {TraceID: "c1"}}},
		{Name: "reroute", Kind: kindReroute, Netem: 50 * time.Millisecond, Results: []roles.ClientResult{{TraceID: "r0"}}},
		{Name: "overflow", Kind: kindReport, Results: []roles.ClientResult{{TraceID: "o0"}}},
	}
	c, r, o := traceLinks(phases)
	assert.Equal(t, []string{"c0", "r0", "o0"}, []string{c, r, o})

	d := fakeDemo(t)
	d.topo = nil
	d.routes = &routeSwitch{url: "http://[fd00:c17:abcd::1]:1/route"}
	d.delayBy = "wire"
	d.opt.JaegerUI = "127.0.0.1:16686"
	var buf bytes.Buffer
	d.opt.Out = &buf
	d.printHelp(phases)
	assert.Contains(t, buf.String(), "placeholder")
	assert.NotContains(t, buf.String(), "/trace/")

	buf.Reset()
	d.opt.UIAssets = "/ui/build"
	d.printHelp(phases)
	out := buf.String()
	assert.NotContains(t, out, "placeholder")
	for _, want := range []string{
		"Congested trace:  http://localhost:16686/trace/c0",
		"Re-routed trace:  http://localhost:16686/trace/r0",
		"Overflowed trace: http://localhost:16686/trace/o0",
		"http://localhost:16686/search?service=athos&tags=%7B%22ioam.node_id%22%3A%224%22%7D",
	} {
		assert.Contains(t, out, want)
	}
}
