package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cross-layer-telemetry/clt/examples/demo/internal/roles"
)

// envRole selects a role instead of the orchestrator. The orchestrator re-runs
// its own executable with it inside the namespaces (the e2e test binary does
// the same from TestMain), so the demo needs no extra build step for its apps.
const envRole = "CLT_DEMO_ROLE"

// roleMain runs one demo application and returns the exit code.
func roleMain(role string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("role", role)
	if err := runRole(ctx, log, role, args); err != nil {
		log.Error("failed", "err", err)
		return 1
	}
	return 0
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func runRole(ctx context.Context, log *slog.Logger, role string, args []string) error {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	otlp := fs.String("otlp", "", "OTLP/gRPC endpoint host:port (empty: no export)")
	node := fs.String("node", role, "host.name resource attribute")
	var listen listFlag
	fs.Var(&listen, "listen", "listen address host:port (repeatable)")
	// aramis
	delayMin := fs.Duration("delay-min", 2*time.Millisecond, "aramis: minimum processing delay")
	delayMax := fs.Duration("delay-max", 10*time.Millisecond, "aramis: maximum processing delay")
	// athos
	aramis := fs.String("aramis", "", "athos: aramis base URL")
	var ioam cltFlags
	ioam.register(fs)
	reportSlots := fs.Int("ioam-report-slots", reportSlots, "athos: hop slots of the /api/report sub-request's CLT transport")
	routeSwitch := fs.String("route-switch", "", "athos: URL of the demo's route switch (PUT ?via=planchet|direct), for /api/reroute")
	// client
	api := fs.String("api", "", "client: athos API URL")
	n := fs.Int("n", 5, "client: number of API requests")
	interval := fs.Duration("interval", 100*time.Millisecond, "client: pause between requests")
	// wire
	wireA := fs.String("a", wirePorthos, "wire: interface toward porthos")
	wireB := fs.String("b", wireAramis, "wire: interface toward aramis")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if role == roleWire {
		return runWire(ctx, log, *wireA, *wireB, listen)
	}

	tr, err := roles.NewTracing(ctx, roles.TracingConfig{Service: role, Node: *node, OTLPEndpoint: *otlp})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := tr.Close(); cerr != nil {
			log.Warn("flush spans", "err", cerr)
		}
	}()
	ready := func() { log.Info("ready", "listen", listen.String()) }
	switch role {
	case roleAramis:
		return roles.RunAramis(ctx, tr, roles.AramisConfig{Listen: listen, DelayMin: *delayMin, DelayMax: *delayMax}, ready)
	case roleAthos:
		rt, stats, err := ioam.transport(log, roles.NewAthosTransport())
		if err != nil {
			return err
		}
		small := ioam
		small.slots = *reportSlots
		report, reportStats, err := small.transport(log, roles.NewAthosTransport())
		if err != nil {
			return err
		}
		cfg := roles.AthosConfig{Listen: listen, Aramis: *aramis, Transport: rt, Report: report,
			Stats: func() any { return sumStats(stats, reportStats) }}
		if *routeSwitch != "" {
			cfg.Reroute = routeSwitchClient(*routeSwitch)
		}
		return roles.RunAthos(ctx, tr, cfg, ready)
	case roleClient:
		return roles.RunClient(ctx, tr, roles.ClientConfig{API: *api, Requests: *n, Interval: *interval}, os.Stdout)
	}
	return fmt.Errorf("unknown role %q", role)
}
