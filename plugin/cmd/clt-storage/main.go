// Command clt-storage is the Cross Layer Telemetry storage server: Jaeger v2's
// remote storage (jaeger.storage.v2 + OTLP Export) and the IOAM collector for
// clt-agent, over one badger store. See package plugin for the details and
// plugin/clt-storage.example.yaml for the configuration.
//
// Usage:
//
//	clt-storage [--config clt-storage.yaml] [--data-dir DIR] [--log-level LEVEL] [--check]
//
// The configuration file speaks clt-agent's dialect: strict YAML over the
// defaults (an unknown key is an error naming it), log: {level, format},
// admin: {listen, pprof} (+ purge); every problem is reported at once and
// the server starts only with a valid file.
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
		// explicit GOMEMLIMIT wins.
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(int64(m) << 20)
		}
		e := cfg.Store.Effective()
		logger.Info("memory limit", "memory_limit_mib", m, "block_cache_mb", e.BlockCacheMB, "index_cache_mb", e.IndexCacheMB,
			"memtable_mb", e.MemTableMB, "num_memtables", e.NumMemtables, "base_table_mb", e.BaseTableMB,
			"num_compactors", e.NumCompactors, "max_concurrent_searches", e.MaxConcurrentSearches, "estimated_mib", e.EstimatedMemoryMiB())
	}
	srv, err := plugin.New(cfg, plugin.Settings{Logger: logger})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "cause", context.Cause(ctx))
	case serveErr = <-srv.Err():
		logger.Error("server failed, shutting down", "err", serveErr)
	}
	return errors.Join(serveErr, srv.Close())
}
