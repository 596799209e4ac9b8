//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vishvananda/netns"
	"go.yaml.in/yaml/v3"

	"github.com/cross-layer-telemetry/clt/agent"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/jaegerui"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/roles"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/stack"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

// Options configure a demo run; flags map onto them (see main.go).
type Options struct {
	// Requests is the number of API calls per phase (baseline, congestion).
	Requests int
	// Interval is the pause between two API calls.
	Interval time.Duration
	// NetemDelay is the delay added on porthos's egress toward aramis in the
	// congestion phase (0 skips that phase).
	NetemDelay time.Duration
	// Congestion picks how the delay is added: "netem" (tc qdisc netem on
	// porthos's egress toward aramis), "wire" (the userspace cable between
	// porthos and aramis) or "auto" (netem when the kernel has it, else wire).
	Congestion string
	// IOAMTraceType (24-bit, e.g. "0xf00000") and IOAMSlots configure athos's
	// CLT transport.
	IOAMTraceType string
	IOAMSlots     int
	// AramisDelayMin/Max bound aramis's random processing delay.
	AramisDelayMin, AramisDelayMax time.Duration

	// Jaeger listeners in the root namespace (127.0.0.1). The OTLP receiver
	// listens on the management bridge address with JaegerOTLPPort.
	JaegerUI, JaegerGRPC, JaegerHealth string
	JaegerOTLPPort                     int
	// clt-storage listeners: Jaeger-facing gRPC and admin on 127.0.0.1, the
	// collector on the management bridge address with CollectorPort.
	StorageGRPC, StorageAdmin string
	CollectorPort             int
	// AgentAdminPort is each agent's admin port on its management address.
	AgentAdminPort int

	// Root is the repository root; DataDir holds configs, logs and badger.
	Root, DataDir, BinDir string
	// JaegerBin overrides $JAEGER_BIN / .cache/bin/jaeger; UIAssets is an
	// optional jaeger-ui build directory.
	JaegerBin, UIAssets string
	// Build compiles clt-storage and clt-agent (and Jaeger if missing).
	Build bool
	// Self is the command that runs a role: the executable (and any leading
	// args); the role is passed in CLT_DEMO_ROLE.
	Self []string
	// TraceTimeout bounds the wait for a trace and its hops in Jaeger.
	TraceTimeout time.Duration

	Log *slog.Logger
	Out io.Writer
}

// Demo is a running demo stack.
type Demo struct {
	opt      Options
	log      *slog.Logger
	sup      *stack.Supervisor
	topo     *netnstest.Topology
	mgmt     *mgmtNet
	Jaeger   *jaegerui.Client
	statePth string
	closers  []func() error
	// delayBy is the mechanism that added the congestion delay.
	delayBy string
	// routes switches porthos → aramis through planchet (re-route phase).
	routes *routeSwitch
	// delay is the delay currently on porthos → aramis.
	delay time.Duration
}

// state lists what a run created, so the next run can remove leftovers of a
// run that was killed (SIGKILL skips every cleanup).
type state struct {
	Namespaces []string `json:"namespaces"`
	Links      []string `json:"links"`
}

// Start builds everything and waits until every component is healthy. On
// error, everything already started is removed.
func Start(ctx context.Context, opt Options) (d *Demo, err error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	d = &Demo{opt: opt, log: opt.Log, statePth: filepath.Join(opt.DataDir, "state.json")}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
			d = nil
		}
	}()
	for _, dir := range []string{opt.DataDir, opt.BinDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return d, err
		}
	}
	d.removeLeftovers()
	if err := checkFree(map[string]string{
		"-jaeger-ui": opt.JaegerUI, "-jaeger-grpc": opt.JaegerGRPC, "-jaeger-health": opt.JaegerHealth,
		"-storage-grpc": opt.StorageGRPC, "-storage-admin": opt.StorageAdmin,
	}); err != nil {
		return d, err
	}

	jaegerBin, err := ensureJaeger(ctx, d.log, opt.Root, opt.JaegerBin, opt.Build)
	if err != nil {
		return d, err
	}
	if opt.Build {
		if err := buildBinaries(ctx, d.log, opt.Root, opt.BinDir); err != nil {
			return d, err
		}
	}
	d.sup, err = stack.NewSupervisor(filepath.Join(opt.DataDir, "logs"), d.log)
	if err != nil {
		return d, err
	}
	d.closers = append(d.closers, d.sup.Close)

	d.log.Info("creating network namespaces")
	d.topo, err = netnstest.New(demoSpec())
	if err != nil {
		return d, err
	}
	d.closers = append(d.closers, d.topo.Close)
	d.mgmt, err = setupMgmt(d.topo)
	if err != nil {
		return d, err
	}
	d.closers = append(d.closers, d.mgmt.Close)
	d.saveState()

	host := d.mgmt.Host.String()
	collector := net.JoinHostPort(host, strconv.Itoa(opt.CollectorPort))
	otlp := net.JoinHostPort(host, strconv.Itoa(opt.JaegerOTLPPort))

	if err := d.startStorage(ctx, collector); err != nil {
		return d, err
	}
	if err := d.startJaeger(ctx, jaegerBin, otlp); err != nil {
		return d, err
	}
	if err := d.startWire(ctx); err != nil {
		return d, err
	}
	if err := d.startRouteSwitch(); err != nil {
		return d, err
	}
	for _, role := range agentRoles {
		if err := d.startAgent(ctx, role, collector); err != nil {
			return d, err
		}
	}
	if err := d.startApps(ctx, otlp); err != nil {
		return d, err
	}
	if err := d.warmUp(ctx); err != nil {
		return d, err
	}
	d.Jaeger = &jaegerui.Client{BaseURL: "http://" + opt.JaegerUI}
	return d, nil
}

func (d *Demo) path(name string) string { return filepath.Join(d.opt.DataDir, name) }

func writeYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, append([]byte("# Generated by examples/demo.\n"), b...), 0o644)
}

// storageConfig is clt-storage's configuration.
func (d *Demo) storageConfig(collector string) plugin.Config {
	cfg := plugin.DefaultConfig()
	cfg.Storage.Listen = d.opt.StorageGRPC
	cfg.Collector.Listen = collector
	cfg.Admin.Listen = d.opt.StorageAdmin
	cfg.Store.Dir = d.path("clt-storage")
	// athos runs no agent: name it here. The routers' names come with
	// their agents' records (node_name).
	cfg.Nodes = map[string]string{strconv.Itoa(nodeAthos): roleAthos}
	return cfg
}

func (d *Demo) startStorage(ctx context.Context, collector string) error {
	cfg := d.storageConfig(collector)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("clt-storage config: %w", err)
	}
	cfgPath := d.path("clt-storage.yaml")
	if err := writeYAML(cfgPath, cfg); err != nil {
		return err
	}
	d.log.Info("starting clt-storage", "jaeger_grpc", cfg.Storage.Listen, "collector", collector, "admin", cfg.Admin.Listen)
	p, err := d.sup.Start(stack.ProcSpec{Name: "clt-storage", Path: filepath.Join(d.opt.BinDir, "clt-storage"), Args: []string{"--config", cfgPath}})
	if err != nil {
		return err
	}
	return stack.WaitHTTP(ctx, "http://"+d.opt.StorageAdmin+"/healthz", 30*time.Second, p)
}

func (d *Demo) startJaeger(ctx context.Context, bin, otlp string) error {
	cfg := stack.JaegerConfig{QueryHTTP: d.opt.JaegerUI, QueryGRPC: d.opt.JaegerGRPC, OTLPGRPC: otlp,
		Health: d.opt.JaegerHealth, Storage: d.opt.StorageGRPC, Timeout: 5 * time.Second, UIAssets: d.opt.UIAssets}
	b, err := cfg.YAML()
	if err != nil {
		return err
	}
	cfgPath := d.path("jaeger.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return err
	}
	d.log.Info("starting Jaeger", "ui", d.opt.JaegerUI, "otlp", otlp, "storage", d.opt.StorageGRPC)
	p, err := d.sup.Start(stack.ProcSpec{Name: "jaeger", Path: bin, Args: []string{"--config", cfgPath}, Env: stack.JaegerEnv})
	if err != nil {
		return err
	}
	if err := stack.WaitHTTP(ctx, "http://"+d.opt.JaegerHealth+"/status", 60*time.Second, p); err != nil {
		return err
	}
	return stack.WaitHTTP(ctx, "http://"+d.opt.JaegerUI+"/api/services", 30*time.Second, p)
}

// agentConfig is the clt-agent configuration of a node: its node setup block
// is the only place the IOAM identity of porthos and aramis is configured.
func (d *Demo) agentConfig(role, collector string) agent.Config {
	u32 := func(v uint32) *uint32 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	yes := true
	cfg := agent.DefaultConfig()
	cfg.AgentID = role
	cfg.Namespaces = []agent.NamespaceConfig{{ID: ioamNamespace, Carrier: agent.CarrierOSS}}
	cfg.Aggregation.Window = 300 * time.Millisecond
	cfg.Export.Collector = collector
	cfg.Admin.Listen = net.JoinHostPort(d.mgmt.Addr(role).String(), strconv.Itoa(d.opt.AgentAdminPort))
	setup := &agent.SetupConfig{
		Namespaces: []agent.SetupNamespace{{ID: ioamNamespace}},
	}
	switch role {
	case rolePorthos:
		setup.NodeID, setup.NodeIDWide = u32(nodePorthos), u64(0x1000000+nodePorthos)
		setup.Interfaces = []agent.SetupInterface{
			{Name: "athos0", Enabled: &yes, ID: u32(ifPorthosFromAthos)},
			{Name: "aramis0", Enabled: &yes, ID: u32(ifPorthosToAramis)},
			{Name: "planchet0", ID: u32(ifPorthosToPlanch)},
		}
	case roleAramis:
		setup.NodeID, setup.NodeIDWide = u32(nodeAramis), u64(0x1000000+nodeAramis)
		setup.Interfaces = []agent.SetupInterface{
			{Name: "porthos0", Enabled: &yes, ID: u32(ifAramisFromPorth)},
			{Name: "planchet0", Enabled: &yes, ID: u32(ifAramisFromPlanch)},
		}
	case rolePlanchet:
		setup.NodeID, setup.NodeIDWide = u32(nodePlanchet), u64(0x1000000+nodePlanchet)
		setup.Interfaces = []agent.SetupInterface{
			{Name: "porthos0", Enabled: &yes, ID: u32(ifPlanchetFromPort)},
			{Name: "aramis0", ID: u32(ifPlanchetToAramis)},
		}
	}
	cfg.Setup = setup
	// The name clt-storage shows for this router's hops and network spans.
	cfg.NodeName = role
	return cfg
}

func (d *Demo) startAgent(ctx context.Context, role, collector string) error {
	cfg := d.agentConfig(role, collector)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("clt-agent %s config: %w", role, err)
	}
	cfgPath := d.path("clt-agent-" + role + ".yaml")
	if err := writeYAML(cfgPath, cfg); err != nil {
		return err
	}
	node := d.topo.Node(role)
	d.log.Info("starting clt-agent", "node", role, "netns", node.Name, "admin", cfg.Admin.Listen)
	p, err := d.sup.Start(stack.ProcSpec{Name: "clt-agent-" + role, Netns: node.Name,
		Path: filepath.Join(d.opt.BinDir, "clt-agent"), Args: []string{"--config", cfgPath}})
	if err != nil {
		return err
	}
	return stack.WaitHTTP(ctx, "http://"+cfg.Admin.Listen+agentHealthPath, 30*time.Second, p)
}

// agentHealthPath is clt-agent's readiness endpoint on its admin listener.
const agentHealthPath = "/healthz"

func hostPort(a netip.Addr, port int) string { return net.JoinHostPort(a.String(), strconv.Itoa(port)) }

// aramisPort is aramis's HTTP port inside its namespace.
const aramisPort = 8000

func (d *Demo) roleSpec(role string, args ...string) stack.ProcSpec {
	return stack.ProcSpec{Name: role, Netns: d.topo.Node(role).Name, Path: d.opt.Self[0],
		Args: append(append([]string(nil), d.opt.Self[1:]...), args...), Env: []string{envRole + "=" + role}}
}

func (d *Demo) startApps(ctx context.Context, otlp string) error {
	aramisMgmt := hostPort(d.mgmt.Addr(roleAramis), aramisPort)
	p, err := d.sup.Start(d.roleSpec(roleAramis, "-otlp", otlp,
		"-listen", hostPort(addrAramis, aramisPort), "-listen", aramisMgmt,
		"-delay-min", d.opt.AramisDelayMin.String(), "-delay-max", d.opt.AramisDelayMax.String()))
	if err != nil {
		return err
	}
	if err := stack.WaitHTTP(ctx, "http://"+aramisMgmt+"/healthz", 30*time.Second, p); err != nil {
		return err
	}
	athosMgmt := hostPort(d.mgmt.Addr(roleAthos), roles.AthosPort)
	p, err = d.sup.Start(d.roleSpec(roleAthos, "-otlp", otlp,
		"-listen", hostPort(addrAthosCli, roles.AthosPort), "-listen", athosMgmt,
		"-aramis", "http://"+hostPort(addrAramis, aramisPort),
		"-ioam-ns", strconv.Itoa(ioamNamespace), "-ioam-trace-type", d.opt.IOAMTraceType,
		"-ioam-slots", strconv.Itoa(d.opt.IOAMSlots), "-ioam-report-slots", strconv.Itoa(reportSlots),
		"-route-switch", d.routes.url))
	if err != nil {
		return err
	}
	return stack.WaitHTTP(ctx, "http://"+athosMgmt+"/healthz", 30*time.Second, p)
}

// SetDelay sets (delay > 0) or removes (0) the delay between porthos and
// aramis: tc netem on porthos's egress toward aramis, or the wire.
func (d *Demo) SetDelay(ctx context.Context, delay time.Duration) error {
	mode := d.opt.Congestion
	if mode == "auto" || mode == "netem" {
		err := d.setNetem(ctx, delay)
		if err == nil {
			d.delayBy = "tc netem"
			return nil
		}
		if mode == "netem" {
			return err
		}
		d.log.Info("tc netem unavailable (no sch_netem in this kernel, or no tc); delaying on the wire instead", "tc", err)
		d.opt.Congestion = "wire"
	}
	d.delayBy = "wire"
	return d.setWireDelay(ctx, delay)
}

func (d *Demo) setNetem(ctx context.Context, delay time.Duration) error {
	ns := d.topo.Node(rolePorthos).Name
	if delay <= 0 {
		_, err := stack.Output(ctx, ns, "tc", "qdisc", "del", "dev", "aramis0", "root")
		return err
	}
	us := strconv.FormatInt(delay.Microseconds(), 10) + "us"
	_, err := stack.Output(ctx, ns, "tc", "qdisc", "replace", "dev", "aramis0", "root", "netem", "delay", us)
	return err
}

func (d *Demo) wireURL() string {
	return "http://" + hostPort(d.mgmt.Addr(roleWire), wireAdminPort) + "/delay"
}

func (d *Demo) setWireDelay(ctx context.Context, delay time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, d.wireURL()+"?ab="+delay.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("wire delay: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("wire delay: status %d: %s", resp.StatusCode, body)
	}
	return nil
}

func (d *Demo) startWire(ctx context.Context) error {
	addr := hostPort(d.mgmt.Addr(roleWire), wireAdminPort)
	p, err := d.sup.Start(d.roleSpec(roleWire, "-a", wirePorthos, "-b", wireAramis, "-listen", addr))
	if err != nil {
		return err
	}
	return stack.WaitHTTP(ctx, "http://"+addr+"/healthz", 30*time.Second, p)
}

// warmUp sends untraced requests along the data path (client → athos,
// athos → porthos → aramis) until they are fast, so neighbour discovery and
// link start-up are done before the first traced request.
func (d *Demo) warmUp(ctx context.Context) error {
	get := func(from, url string) (time.Duration, error) {
		node := d.topo.Node(from)
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, nw, addr string) (net.Conn, error) {
			return node.DialContext(ctx, nil, nw, addr)
		}}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		start := time.Now()
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return time.Since(start), nil
	}
	for _, c := range []struct{ from, url string }{
		{roleAthos, "http://" + hostPort(addrAramis, aramisPort) + "/healthz"},
		{roleClient, "http://" + hostPort(addrAthosCli, roles.AthosPort) + "/healthz"},
	} {
		var last error
		ok := false
		for i := 0; i < 10 && !ok; i++ {
			took, err := get(c.from, c.url)
			last = err
			ok = err == nil && took < 200*time.Millisecond
			d.log.Debug("warm-up", "from", c.from, "url", c.url, "took", took, "err", err)
		}
		if !ok {
			return fmt.Errorf("data path %s → %s not ready: %v", c.from, c.url, last)
		}
	}
	return nil
}

// phaseKind is one kind of API call: what athos does for it and when its
// trace is complete in Jaeger.
type phaseKind struct {
	// API is athos's path (roles.Path*).
	API string
	// Spans is the number of spans of a complete trace.
	Spans int
	// Nodes must each have an ioam.hop on every sub-request span.
	Nodes []int64
	// Reporters is the number of agents that must have reported on every
	// sub-request span (ioam.reporters): an agent's report arrives on its own
	// aggregation window, and a table printed before it would miss it.
	Reporters int64
}

var (
	// kindRequest: /check then /validate, each in its own span, over
	// athos → porthos → aramis.
	kindRequest = phaseKind{API: roles.PathRequest, Spans: 6, Nodes: []int64{nodePorthos, nodeAramis}, Reporters: 2}
	// kindReport: /report with one hop slot for two IOAM nodes: porthos
	// fills it, aramis finds the trace full (overflow) and reports that.
	kindReport = phaseKind{API: roles.PathReport, Spans: 4, Nodes: []int64{nodePorthos}, Reporters: 2}
	// kindReroute: one /data span, two requests, the second one through
	// planchet: porthos, planchet and aramis report.
	kindReroute = phaseKind{API: roles.PathReroute, Spans: 5, Nodes: []int64{nodePorthos, nodePlanchet, nodeAramis}, Reporters: 3}
)

// RunPhase runs the client for one batch of n API calls of kind with the
// given delay on porthos → aramis (0: leave it as it is) and waits for every
// trace to be complete in Jaeger.
func (d *Demo) RunPhase(ctx context.Context, name string, kind phaseKind, n int, delay time.Duration) (*Phase, error) {
	ph := &Phase{Name: name, Kind: kind, Netem: d.delay}
	if delay > 0 {
		if err := d.SetDelay(ctx, delay); err != nil {
			return ph, err
		}
		d.delay = delay
		ph.Netem = delay
		d.log.Info("congestion: delay on porthos → aramis", "delay", delay, "by", d.delayBy)
	}
	ph.DelayBy = d.delayBy
	d.log.Info("running the client", "phase", name, "api", kind.API, "requests", n)
	var out bytes.Buffer
	err := d.sup.Run(ctx, stack.ProcSpec{Name: "client-" + name, Netns: d.topo.Node(roleClient).Name, Path: d.opt.Self[0],
		Args: append(append([]string(nil), d.opt.Self[1:]...),
			"-otlp", net.JoinHostPort(d.mgmt.Host.String(), strconv.Itoa(d.opt.JaegerOTLPPort)),
			"-api", "http://"+hostPort(addrAthosCli, roles.AthosPort)+kind.API,
			"-n", strconv.Itoa(n), "-interval", d.opt.Interval.String()),
		Env: []string{envRole + "=" + roleClient}, Stdout: &out})
	dec := json.NewDecoder(&out)
	for dec.More() {
		var r roles.ClientResult
		if derr := dec.Decode(&r); derr != nil {
			return ph, errors.Join(err, fmt.Errorf("client output: %w", derr))
		}
		ph.Results = append(ph.Results, r)
	}
	if err != nil {
		return ph, err
	}
	for _, r := range ph.Results {
		t, werr := d.WaitTrace(ctx, kind, r)
		if t != nil {
			ph.Traces = append(ph.Traces, t)
		}
		if werr != nil {
			return ph, werr
		}
	}
	return ph, nil
}

// complete reports whether the trace holds every span of an API call of kind
// and every sub-request span carries the hops of kind.Nodes, reported by
// kind.Reporters agents.
func complete(t *jaegerui.Trace, kind phaseKind, r roles.ClientResult) (bool, string) {
	if n := appSpans(t); n < kind.Spans {
		return false, fmt.Sprintf("%d of %d spans", n, kind.Spans)
	}
	for _, sub := range r.API.Subs {
		s, ok := t.Span(sub.SpanID)
		if !ok {
			return false, "span " + sub.SpanID + " (" + sub.Path + ") missing"
		}
		seen := map[int64]bool{}
		for _, h := range s.Hops() {
			seen[h.NodeID] = true
		}
		for _, n := range kind.Nodes {
			if !seen[n] {
				return false, fmt.Sprintf("%s: no hop of node %d yet (%d hop logs)", sub.Path, n, len(s.Hops()))
			}
		}
		if n, _ := s.TagInt(plugin.AttrReporters); n < kind.Reporters {
			return false, fmt.Sprintf("%s: %d of %d agents reported", sub.Path, n, kind.Reporters)
		}
	}
	return true, ""
}

// appSpans counts the trace's application spans: clt-storage's network
// spans (ioam.synthetic) come on top of them.
func appSpans(t *jaegerui.Trace) int {
	n := 0
	for i := range t.Spans {
		if !t.Spans[i].Synthetic() {
			n++
		}
	}
	return n
}

// WaitTrace polls /api/traces/{id} until the trace is complete or
// TraceTimeout passes; it returns the last version seen either way.
func (d *Demo) WaitTrace(ctx context.Context, kind phaseKind, r roles.ClientResult) (*jaegerui.Trace, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opt.TraceTimeout)
	defer cancel()
	var last *jaegerui.Trace
	why := "not found"
	for {
		t, _, err := d.Jaeger.GetTrace(ctx, r.TraceID)
		switch {
		case err == nil:
			last = t
			ok, w := complete(t, kind, r)
			if ok {
				return t, nil
			}
			why = w
		case !errors.Is(err, jaegerui.ErrNotFound):
			why = err.Error()
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("trace %s incomplete after %s: %s", r.TraceID, d.opt.TraceTimeout, why)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Close stops every process and removes every namespace and link. Safe to
// call more than once.
func (d *Demo) Close() error {
	var errs []error
	// Processes first (apps, agents, wire, Jaeger, clt-storage: reverse start
	// order), while their namespaces and the management network still exist,
	// so that spans and IOAM records in flight are flushed; then the network.
	if d.sup != nil {
		errs = append(errs, d.sup.Close())
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		errs = append(errs, d.closers[i]())
	}
	d.closers = nil
	if err := errors.Join(errs...); err != nil {
		return err
	}
	_ = os.Remove(d.statePth)
	return nil
}

func (d *Demo) saveState() {
	st := state{Links: append([]string(nil), d.mgmt.links...)}
	for _, n := range d.topo.Nodes {
		st.Namespaces = append(st.Namespaces, n.Name)
	}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(d.statePth, b, 0o644); err != nil {
		d.log.Warn("state file", "err", err)
	}
}

// removeLeftovers deletes the namespaces and links a killed run left behind.
func (d *Demo) removeLeftovers() {
	b, err := os.ReadFile(d.statePth)
	if err != nil {
		return
	}
	var st state
	if json.Unmarshal(b, &st) == nil {
		for _, l := range st.Links {
			_ = deleteLink(l)
		}
		for _, n := range st.Namespaces {
			if _, err := os.Stat(filepath.Join("/run/netns", n)); err == nil {
				if err := netns.DeleteNamed(n); err == nil {
					d.log.Info("removed a namespace left by a previous run", "netns", n)
				}
			}
		}
	}
	_ = os.Remove(d.statePth)
}

// checkFree fails early, naming the flag, when a listen address is taken
// (another Jaeger or clt-storage): a health check could otherwise be answered
// by the other process.
func checkFree(addrs map[string]string) error {
	var errs []error
	for flag, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s is not free (another Jaeger or clt-storage running?): %w", flag, a, err))
			continue
		}
		_ = ln.Close()
	}
	return errors.Join(errs...)
}
