package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cross-layer-telemetry/clt/internal/admin"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Settings are the non-YAML inputs of an Agent.
type Settings struct {
	// Logger defaults to a discarding logger.
	Logger *slog.Logger
	// Stdout receives export.stdout records; default os.Stdout.
	Stdout io.Writer
	// Source, when set, replaces the kernel source (tests, benchmarks).
	Source Source
}

// Agent is a running clt-agent: source → decode → aggregate → export, plus
// the admin HTTP endpoint. Start once, Close once (Close is idempotent and
// safe without Start).
type Agent struct {
	cfg Config
	set Settings
	log *slog.Logger
	m   *Metrics

	src   Source
	pipe  *Pipeline
	exp   Exporter
	admin *admin.Server
	local LocalNode

	wg        sync.WaitGroup
	srcDone   chan error
	running   atomic.Bool
	startOnce sync.Once
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and returns an agent that has not touched the kernel yet.
func New(cfg Config, set Settings) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Stdout == nil {
		set.Stdout = os.Stdout
	}
	if cfg.AgentID == "" || cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("agent_id, node_name: host name: %w", err)
		}
		if cfg.AgentID == "" {
			cfg.AgentID = h
		}
		if cfg.NodeName == "" {
			cfg.NodeName = h
		}
	}
	return &Agent{cfg: cfg, set: set, log: set.Logger, m: NewMetrics(), srcDone: make(chan error, 1)}, nil
}

// Metrics returns the agent's metrics (its private registry).
func (a *Agent) Metrics() *Metrics { return a.m }

// AdminAddr returns the admin listener's address once started ("" if disabled).
func (a *Agent) AdminAddr() string {
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr().String()
}

// LocalNodeID returns the node id records are reported under (after Start).
func (a *Agent) LocalNodeID() uint32 { return a.local.ID }

// LocalWideNodeID returns the wide node id by which this node's entry is
// recognised in traces without the short node id (after Start).
func (a *Agent) LocalWideNodeID() uint64 { return a.local.WideID }

// Done is closed with the source's error (nil for a clean stop) when the
// source stops by itself.
func (a *Agent) Done() <-chan error { return a.srcDone }

// Start applies node setup, opens the source, starts export, aggregation
// and the admin endpoint, then reads events in the background.
func (a *Agent) Start(ctx context.Context) error {
	err := errors.New("agent: already started")
	a.startOnce.Do(func() {
		err = a.start(ctx)
		if err != nil {
			err = errors.Join(err, a.Close())
		}
	})
	return err
}

func (a *Agent) start(ctx context.Context) error {
	k, err := openKernel(a.cfg.NetNSPath)
	if err != nil {
		return err
	}
	defer k.close()
	if a.cfg.Setup != nil {
		changed, err := k.setup(ctx, a.cfg.Setup)
		if err != nil {
			return err
		}
		if len(changed) > 0 {
			a.log.Info("node setup applied", "changes", changed)
		} else {
			a.log.Info("node setup already in place")
		}
	}
	if a.local, err = a.localNode(k); err != nil {
		return err
	}
	if a.local.ID == ioam6.NodeIDUnavailable {
		a.log.Warn("node id is unset (net.ipv6.ioam6_id = 0xffffff): set it or setup.node_id so records name this node")
	}
	a.src = a.set.Source
	if a.src == nil {
		var why string
		a.src, why, err = k.openSource(a.cfg.Source, a.m, a.malformed)
		if err != nil {
			return err
		}
		a.log.Info("source selected", "source", a.src.Name(), "reason", why)
		if a.src.Name() == SourceCapture {
			if fwd, err := k.forwards(); err == nil && !fwd {
				a.log.Warn(captureOnHostProblem)
			}
		}
	}

	var exps multiExporter
	if a.cfg.Export.Stdout {
		exps = append(exps, NewStdoutExporter(a.set.Stdout))
	}
	if a.cfg.Export.Collector != "" {
		g, err := NewGRPCExporter(a.cfg.Export, a.cfg.AgentID, a.log, a.m)
		if err != nil {
			return err
		}
		exps = append(exps, g)
	}
	a.exp = exps
	if err := a.exp.Start(ctx); err != nil {
		return err
	}
	a.pipe = NewPipeline(a.cfg, a.local, a.src.Name(), a.m, a.exp)
	if err := a.pipe.Start(ctx); err != nil {
		return err
	}
	if a.cfg.Admin.Listen != "" {
		mux := admin.NewMux(a.cfg.Admin, a.m.Registry, func() error {
			if !a.running.Load() {
				return errors.New("source stopped")
			}
			return nil
		})
		if a.admin, err = admin.Start(ctx, "admin.listen", a.cfg.Admin.Listen, mux, func(err error) {
			a.log.Error("admin server", "err", err)
		}); err != nil {
			return err
		}
	}
	runCtx := context.WithoutCancel(ctx)
	a.running.Store(true)
	a.wg.Go(func() {
		err := a.src.Run(runCtx, a.pipe.Handle)
		a.running.Store(false)
		a.srcDone <- err
		close(a.srcDone)
	})
	a.log.Info("clt-agent started", "agent_id", a.cfg.AgentID, "node_name", a.cfg.NodeName, "node_id", a.local.ID,
		"node_id_wide", ioam6.FormatWideID(a.local.WideID), "source", a.src.Name(),
		"collector", a.cfg.Export.Collector, "stdout", a.cfg.Export.Stdout, "admin", a.AdminAddr(),
		"window", a.cfg.Aggregation.Window, "namespaces", len(a.cfg.Namespaces))
	return nil
}

// localNode returns this node's ids: from the config (node_id,
// node_id_wide), else from the setup block, else from the sysctls of the
// node's namespace, each id on its own.
func (a *Agent) localNode(k *kernel) (LocalNode, error) {
	var l LocalNode
	var err error
	switch {
	case a.cfg.NodeID != nil:
		l.ID = *a.cfg.NodeID
	case a.cfg.Setup != nil && a.cfg.Setup.NodeID != nil:
		l.ID = *a.cfg.Setup.NodeID
	default:
		if l.ID, err = k.nodeID(); err != nil {
			return l, fmt.Errorf("node_id: read net.ipv6.ioam6_id: %w", err)
		}
	}
	switch {
	case a.cfg.NodeIDWide != nil:
		l.WideID = *a.cfg.NodeIDWide
	case a.cfg.Setup != nil && a.cfg.Setup.NodeIDWide != nil:
		l.WideID = *a.cfg.Setup.NodeIDWide
	default:
		if l.WideID, err = k.wideNodeID(); err != nil {
			return l, fmt.Errorf("node_id_wide: read net.ipv6.ioam6_id_wide: %w", err)
		}
	}
	return l, nil
}

// malformed counts a source-side decode failure (before the pipeline exists
// it cannot happen: sources start reading in Start's last step).
func (a *Agent) malformed(reason string) { a.m.EventsMalformed.WithLabelValues(reason).Inc() }

// Close stops reading, flushes the open aggregates into the exporter, lets
// the exporter drain for at most export.shutdown_timeout, and stops the
// admin endpoint. Idempotent; safe without Start.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		var errs []error
		if a.src != nil {
			errs = append(errs, a.src.Close())
		}
		if a.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			errs = append(errs, a.admin.Shutdown(ctx))
			cancel()
		}
		a.wg.Wait()
		if a.pipe != nil {
			errs = append(errs, a.pipe.Close())
		}
		if a.exp != nil {
			errs = append(errs, a.exp.Close())
		}
		a.closeErr = errors.Join(errs...)
		a.log.Info("clt-agent stopped", "err", a.closeErr)
	})
	return a.closeErr
}

// Run starts the agent, waits for ctx to end (or the source to fail) and
// shuts down cleanly.
func Run(ctx context.Context, cfg Config, set Settings) error {
	a, err := New(cfg, set)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	var srcErr error
	select {
	case <-ctx.Done():
	case srcErr = <-a.Done():
		if srcErr == nil {
			srcErr = errors.New("source stopped")
		}
		srcErr = fmt.Errorf("source %s: %w", a.src.Name(), srcErr)
	}
	return errors.Join(srcErr, a.Close())
}
