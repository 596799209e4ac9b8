//go:build linux

// Command demo is the one-command CLT demo (make demo builds it into
// .cache/bin/clt-demo and runs it).
//
// It builds clt-storage and clt-agent, creates the network namespaces
// client → athos → porthos → aramis, starts clt-storage, Jaeger v2 (grpc
// storage backend → clt-storage), a clt-agent on porthos and aramis (whose
// node setup block configures their IOAM ids), and the apps; then it sends API
// requests without and with a tc netem delay on porthos → aramis, and prints
// each trace with its IOAM hops as read from Jaeger's /api/traces/{id}.
// Jaeger stays up at http://localhost:16686 until Ctrl-C (-oneshot: exit at
// once). Everything it started is removed on exit, on failure and on signals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cross-layer-telemetry/clt/examples/demo/internal/roles"
	"github.com/cross-layer-telemetry/clt/plugin"
)

func main() {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(roleMain(role, os.Args[1:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "demo:", err)
		}
		os.Exit(1)
	}
}

// cli holds the flags that are not Options.
type cli struct {
	oneShot bool
	verbose bool
}

func parseFlags(args []string, stderr io.Writer) (Options, cli, error) {
	var c cli
	o := Options{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.oneShot, "oneshot", false, "run the scenario, print it and exit (tests); default: keep Jaeger up until Ctrl-C")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	fs.IntVar(&o.Requests, "requests", 3, "API requests per phase")
	fs.DurationVar(&o.Interval, "interval", 200*time.Millisecond, "pause between API requests")
	fs.DurationVar(&o.NetemDelay, "netem-delay", 50*time.Millisecond, "netem delay on porthos → aramis in the congestion phase (0: skip the phase)")
	fs.StringVar(&o.IOAMTraceType, "ioam-trace-type", "0xf00000", "IOAM trace type athos asks for (e.g. 0xf20000 adds queue depth, bit 6)")
	fs.IntVar(&o.IOAMSlots, "ioam-slots", 6, "hop slots athos pre-allocates")
	fs.StringVar(&o.Congestion, "congestion", "auto", "how to add the delay: netem, wire or auto (netem if the kernel has it)")
	fs.DurationVar(&o.AramisDelayMin, "aramis-delay-min", 2*time.Millisecond, "aramis minimum processing delay")
	fs.DurationVar(&o.AramisDelayMax, "aramis-delay-max", 10*time.Millisecond, "aramis maximum processing delay")
	fs.StringVar(&o.JaegerUI, "jaeger-ui", "127.0.0.1:16686", "Jaeger UI and /api listen address")
	fs.StringVar(&o.JaegerGRPC, "jaeger-grpc", "127.0.0.1:16685", "Jaeger query gRPC listen address")
	fs.StringVar(&o.JaegerHealth, "jaeger-health", "127.0.0.1:13133", "Jaeger health check listen address")
	fs.IntVar(&o.JaegerOTLPPort, "jaeger-otlp-port", 4317, "Jaeger OTLP/gRPC port (on the management bridge address)")
	fs.StringVar(&o.StorageGRPC, "storage-grpc", "127.0.0.1:17271", "clt-storage gRPC listen address for Jaeger")
	fs.StringVar(&o.StorageAdmin, "storage-admin", "127.0.0.1:17270", "clt-storage admin listen address")
	fs.IntVar(&o.CollectorPort, "collector-port", 7123, "clt-storage collector port (on the management bridge address)")
	fs.IntVar(&o.AgentAdminPort, "agent-admin-port", 17272, "clt-agent admin port (on each node's management address)")
	fs.StringVar(&o.DataDir, "data", "", "data directory (default <repo>/examples/demo/data)")
	fs.StringVar(&o.BinDir, "bin", "", "binary directory (default <repo>/.cache/bin)")
	fs.StringVar(&o.JaegerBin, "jaeger-bin", "", "Jaeger v2 binary (default $JAEGER_BIN, else <repo>/.cache/bin/jaeger)")
	fs.StringVar(&o.UIAssets, "jaeger-ui-assets", "", "jaeger-ui build directory (default $"+envUIAssets+", else <repo>/"+defaultUIAssets+" when present; without one a module-built Jaeger serves a placeholder page)")
	noBuild := fs.Bool("no-build", false, "do not build clt-storage, clt-agent or Jaeger")
	fs.DurationVar(&o.TraceTimeout, "trace-timeout", 30*time.Second, "how long to wait for a trace and its hops in Jaeger")
	if err := fs.Parse(args); err != nil {
		return o, c, err
	}
	if fs.NArg() > 0 {
		return o, c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.Build = !*noBuild
	var errs []error
	if o.Requests < 1 || o.Requests > 1000 {
		errs = append(errs, errors.New("-requests must be in [1, 1000]"))
	}
	if v, err := strconv.ParseUint(o.IOAMTraceType, 0, 32); err != nil || v > 0xFFFFFF {
		errs = append(errs, fmt.Errorf("-ioam-trace-type %q: want a 24-bit number such as 0xf00000", o.IOAMTraceType))
	}
	if o.IOAMSlots < 1 || o.IOAMSlots > 10 {
		errs = append(errs, errors.New("-ioam-slots must be in [1, 10]"))
	}
	switch o.Congestion {
	case "auto", "netem", "wire":
	default:
		errs = append(errs, fmt.Errorf("-congestion %q: want auto, netem or wire", o.Congestion))
	}
	if o.NetemDelay < 0 || o.NetemDelay > 10*time.Second {
		errs = append(errs, errors.New("-netem-delay must be in [0, 10s]"))
	}
	for _, a := range []struct{ flag, v string }{{"jaeger-ui", o.JaegerUI}, {"jaeger-grpc", o.JaegerGRPC},
		{"jaeger-health", o.JaegerHealth}, {"storage-grpc", o.StorageGRPC}, {"storage-admin", o.StorageAdmin}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("-%s: %w", a.flag, err))
		}
	}
	return o, c, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt, c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	opt.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opt.Out = stdout
	if os.Geteuid() != 0 {
		return errors.New("the demo creates network namespaces and sets IOAM sysctls: run it as root (sudo make demo)")
	}
	if err := opt.defaults(); err != nil {
		return err
	}
	return Scenario(ctx, opt, c.oneShot)
}

// defaults fills the paths and the role command.
func (o *Options) defaults() error {
	if o.Root == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		o.Root = root
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(o.Root, "examples", "demo", "data")
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.Root, ".cache", "bin")
	}
	if len(o.Self) == 0 {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("own executable: %w", err)
		}
		o.Self = []string{self}
	}
	if err := o.resolveUIAssets(); err != nil {
		return err
	}
	if o.IOAMTraceType == "" {
		o.IOAMTraceType = "0xf00000"
	}
	if o.IOAMSlots == 0 {
		o.IOAMSlots = 6
	}
	if o.TraceTimeout <= 0 {
		o.TraceTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

// Scenario starts the demo, runs both phases, prints them, and (unless
// oneShot) waits for Ctrl-C; then it removes everything.
func Scenario(ctx context.Context, opt Options, oneShot bool) (err error) {
	d, err := Start(ctx, opt)
	if err != nil {
		return err
	}
	defer func() {
		start := time.Now()
		cerr := d.Close()
		if cerr == nil {
			opt.Log.Info("removed every process, namespace and link the demo created", "took", time.Since(start).Round(time.Millisecond))
		}
		err = errors.Join(err, cerr)
	}()
	phases, err := d.RunScenario(ctx)
	for _, ph := range phases {
		printPhase(opt.Out, ph)
	}
	if err != nil {
		return err
	}
	if oneShot {
		return nil
	}
	d.printHelp(phases)
	select {
	case <-ctx.Done():
		opt.Log.Info("stopping: removing processes and namespaces")
		return nil
	case p := <-d.sup.Exited():
		return fmt.Errorf("%s exited: %v\n%s", p.Name, p.Err(), p.Tail(20))
	}
}

// RunScenario runs the phases: baseline, congestion (when NetemDelay > 0),
// reroute (one call whose span changes path, the delay still on the direct
// link) and overflow (one call with too few hop slots).
func (d *Demo) RunScenario(ctx context.Context) ([]*Phase, error) {
	steps := []struct {
		name  string
		kind  phaseKind
		n     int
		delay time.Duration
	}{
		{"baseline", kindRequest, d.opt.Requests, 0},
		{"congestion", kindRequest, d.opt.Requests, d.opt.NetemDelay},
		{"reroute", kindReroute, 1, 0},
		{"overflow", kindReport, 1, 0},
	}
	var phases []*Phase
	for _, st := range steps {
		if st.name == "congestion" && st.delay <= 0 {
			continue
		}
		ph, err := d.RunPhase(ctx, st.name, st.kind, st.n, st.delay)
		phases = append(phases, ph)
		if err != nil {
			return phases, err
		}
	}
	return phases, nil
}

// envUIAssets names a jaeger-ui build directory; defaultUIAssets is where
// CI's copy lives, relative to the repository root.
const (
	envUIAssets     = "JAEGER_UI_ASSETS"
	defaultUIAssets = "../shared/jaeger-ui/build"
)

// resolveUIAssets picks the jaeger-ui build: the flag, else
// $JAEGER_UI_ASSETS, else defaultUIAssets when it exists. A directory given
// explicitly must hold a build (index.html).
func (o *Options) resolveUIAssets() error {
	explicit := o.UIAssets != ""
	if !explicit {
		o.UIAssets = os.Getenv(envUIAssets)
		explicit = o.UIAssets != ""
	}
	if !explicit {
		o.UIAssets = filepath.Join(o.Root, filepath.FromSlash(defaultUIAssets))
	}
	abs, err := filepath.Abs(o.UIAssets)
	if err == nil {
		_, err = os.Stat(filepath.Join(abs, "index.html"))
	}
	switch {
	case err == nil:
		o.UIAssets = abs
	case explicit:
		return fmt.Errorf("jaeger-ui assets %s: no jaeger-ui build there (index.html): %w", o.UIAssets, err)
	default:
		o.UIAssets = ""
	}
	return nil
}

// traceLinks picks the traces worth opening: a congested one, the
// re-routed one and the overflowed one (empty when the phase did not run).
func traceLinks(phases []*Phase) (congested, rerouted, overflowed string) {
	for _, ph := range phases {
		if len(ph.Results) == 0 {
			continue
		}
		id := ph.Results[0].TraceID
		switch {
		case ph.Kind.API == roles.PathRequest && ph.Netem > 0:
			congested = id
		case ph.Kind.API == roles.PathReroute:
			rerouted = id
		case ph.Kind.API == roles.PathReport:
			overflowed = id
		}
	}
	return congested, rerouted, overflowed
}

func (d *Demo) printHelp(phases []*Phase) {
	w := d.opt.Out
	_, port, _ := net.SplitHostPort(d.opt.JaegerUI)
	ui := "http://localhost:" + port
	congested, rerouted, overflowed := traceLinks(phases)
	fmt.Fprintln(w)
	if d.opt.UIAssets != "" {
		fmt.Fprintf(w, "Jaeger UI:        %s/search?service=athos   (jaeger-ui from %s)\n", ui, d.opt.UIAssets)
		for _, l := range []struct{ what, id string }{
			{"Congested trace: ", congested}, {"Re-routed trace: ", rerouted}, {"Overflowed trace:", overflowed},
		} {
			if l.id != "" {
				fmt.Fprintf(w, "%s %s/trace/%s\n", l.what, ui, l.id)
			}
		}
		fmt.Fprintf(w, "Crossed planchet: %s/search?service=athos&tags=%s\n", ui,
			url.QueryEscape(fmt.Sprintf(`{"%s":"%d"}`, plugin.AttrNodeID, nodePlanchet)))
	} else {
		fmt.Fprintf(w, "Jaeger UI:        %s serves Jaeger's placeholder page: no jaeger-ui build given (-jaeger-ui-assets or $%s; see examples/demo/README.md)\n", ui, envUIAssets)
	}
	if id := congested; id != "" {
		fmt.Fprintf(w, "Trace JSON:       curl -s http://%s/api/traces/%s\n", d.opt.JaegerUI, id)
	}
	fmt.Fprintf(w, "Tag search:       curl -s 'http://%s/api/traces?service=athos&tag=%s:%d'\n", d.opt.JaegerUI, plugin.AttrNodeID, nodePlanchet)
	fmt.Fprintf(w, "More traffic:     curl -s http://%s%s   (or %s, %s)\n", hostPort(d.mgmt.Addr(roleAthos), roles.AthosPort), roles.PathRequest, roles.PathReroute, roles.PathReport)
	if d.delayBy == "tc netem" {
		fmt.Fprintf(w, "Congestion:       ip netns exec %s tc qdisc replace dev aramis0 root netem delay 100ms\n", d.topo.Node(rolePorthos).Name)
	} else {
		fmt.Fprintf(w, "Congestion:       curl -s -X PUT '%s?ab=100ms'   (the wire between porthos and aramis)\n", d.wireURL())
	}
	fmt.Fprintf(w, "Route:            curl -s -X PUT '%s?via=planchet'   (or via=direct)\n", d.routes.url)
	fmt.Fprintf(w, "Logs:             %s\n", filepath.Join(d.opt.DataDir, "logs"))
	fmt.Fprintln(w, "Press Ctrl-C to stop and remove everything.")
}
