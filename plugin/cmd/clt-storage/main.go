// Command clt-storage is the Cross Layer Telemetry storage server: Jaeger v2's
// remote storage (jaeger.storage.v2 + OTLP Export) and the IOAM collector for
// clt-agent, over one badger store. See package plugin for the details and
// plugin/clt-storage.example.yaml for the configuration.
//
// Usage:
//
//	clt-storage [--config clt-storage.yaml] [--data-dir DIR] [--log-level LEVEL] [--check]
//
// Started by a Jaeger v1.12–v1.57 host as its storage plugin
// (--grpc-storage-plugin.binary; the go-plugin handshake cookie
// STORAGE_PLUGIN=jaeger is in the environment), it serves jaeger.storage.v1
// to that host through hashicorp/go-plugin instead, from its own store or
// forwarding to a shared clt-storage (sidecar.forward), and exits when the
// host goes away.
//
// The configuration file speaks clt-agent's dialect: strict YAML over the
// defaults (an unknown key is an error naming it), log: {level, format},
// admin: {listen, pprof} (+ purge, tls, auth); every problem is reported at once and
// the server starts only with a valid file. SIGHUP re-reads the TLS
// certificates and bearer tokens of every port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/cross-layer-telemetry/clt/internal/logging"
	"github.com/cross-layer-telemetry/clt/plugin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "clt-storage:", err)
		}
		os.Exit(1)
	}
}

// run parses flags, loads and validates the config, serves until ctx is
// cancelled (SIGINT/SIGTERM) or a server fails, then shuts down gracefully.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("clt-storage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("CLT_STORAGE_CONFIG"), "YAML config file (env CLT_STORAGE_CONFIG); defaults apply to missing keys")
	dataDir := fs.String("data-dir", "", "override store.dir")
	logLevel := fs.String("log-level", "", "override log.level (debug, info, warn, error)")
	check := fs.Bool("check", false, "validate the config, print it and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := plugin.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = plugin.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if *dataDir != "" {
		cfg.Store.Dir = *dataDir
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config:\n%w", err)
	}
	if *check {
		fmt.Fprintln(stderr, "config ok")
		return nil
	}
	logger := logging.New(cfg.Log, stderr)
	if m := cfg.Store.MemoryLimitMiB; m > 0 {
		// The store's sizes take about half of the budget (ioamstore
		// Config.Effective); the Go GC keeps the whole heap under it. An
		// explicit GOMEMLIMIT wins, and so does the top-level memory_limit_mib
		// (the process's soft limit, set by the server at start).
		if os.Getenv("GOMEMLIMIT") == "" && cfg.MemoryLimitMiB == 0 {
			debug.SetMemoryLimit(int64(m) << 20)
		}
		e := cfg.Store.Effective()
		logger.Info("memory limit", "memory_limit_mib", m, "block_cache_mb", e.BlockCacheMB, "index_cache_mb", e.IndexCacheMB,
			"memtable_mb", e.MemTableMB, "num_memtables", e.NumMemtables, "base_table_mb", e.BaseTableMB,
			"num_compactors", e.NumCompactors, "max_concurrent_searches", e.MaxConcurrentSearches, "estimated_mib", e.EstimatedMemoryMiB())
	}
	if plugin.IsSidecar() { // started by a Jaeger v1 host (go-plugin handshake cookie)
		return plugin.ServeSidecar(ctx, cfg, logger)
	}
	srv, err := plugin.New(cfg, plugin.Settings{Logger: logger})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	// SIGHUP re-reads the TLS certificates and token files (they also
	// reload by themselves when the certificate files change).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var serveErr error
	for serveErr == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
			logger.Info("shutting down", "cause", context.Cause(ctx))
		case serveErr = <-srv.Err():
			logger.Error("server failed, shutting down", "err", serveErr)
		case <-hup:
			if err := srv.ReloadTLS(); err != nil {
				logger.Error("reload on SIGHUP failed, keeping the previous certificates and tokens", "err", err)
			} else {
				logger.Info("certificates and tokens reloaded on SIGHUP")
			}
		}
	}
	return errors.Join(serveErr, srv.Close())
}
