// Command clt-agent reports the IOAM trace data a Linux node fills to
// clt-storage. See package agent for the pipeline and agent/deploy for a
// systemd unit and an example configuration.
//
//	clt-agent [--config FILE] [--log-level LEVEL]  run the agent
//	clt-agent check [--config FILE]                print the node's IOAM state and what is missing
//	clt-agent defaults                             print the default configuration as YAML
//
// The configuration file speaks clt-storage's dialect: strict YAML over
// the defaults (an unknown key is an error naming it), log: {level,
// format}, admin: {listen, pprof}; every problem is reported at once and
// the agent starts only with a valid file. CLT_AGENT_CONFIG names the file
// when --config is not given.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.yaml.in/yaml/v3"

	"github.com/cross-layer-telemetry/clt/agent"
	"github.com/cross-layer-telemetry/clt/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, agent.ErrCheckFailed) {
			fmt.Fprintln(os.Stderr, "clt-agent:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "check" || args[0] == "defaults") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("clt-agent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", os.Getenv("CLT_AGENT_CONFIG"), "YAML configuration file (env CLT_AGENT_CONFIG; default: built-in defaults)")
	logLevel := fs.String("log-level", "", "override log.level (debug, info, warn, error)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := agent.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = agent.LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	switch cmd {
	case "defaults":
		enc := yaml.NewEncoder(stdout)
		enc.SetIndent(2)
		return errors.Join(enc.Encode(cfg), enc.Close())
	case "check":
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("invalid config:\n%w", err)
		}
		return agent.Check(ctx, cfg, stdout)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config:\n%w", err)
	}
	return agent.Run(ctx, cfg, agent.Settings{Logger: newLogger(cfg, stderr), Stdout: stdout})
}

// newLogger builds the process logger and warns once about the deprecated
// keys the configuration used.
func newLogger(cfg agent.Config, w io.Writer) *slog.Logger {
	log := logging.New(cfg.Log, w)
	for _, d := range cfg.Deprecations() {
		log.Warn("deprecated configuration: " + d)
	}
	return log
}
