// Package logging is the log block that clt-agent and clt-storage share
// (log: {level, format}) and the log/slog logger built from it. Components
// log start, stop and errors, never per packet, span or record: those are
// counted in metrics.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Config configures the process log, written to standard error (log).
type Config struct {
	// Level is debug, info, warn or error (log.level). Default info.
	Level string `yaml:"level"`
	// Format is text (logfmt-like key=value) or json (log.format). Default text.
	Format string `yaml:"format"`
}

// DefaultConfig is info level, text format.
func DefaultConfig() Config { return Config{Level: "info", Format: "text"} }

// Validate reports every problem, each naming its YAML key under key
// (normally "log").
func (c Config) Validate(key string) []error {
	var errs []error
	if _, err := c.level(); err != nil {
		errs = append(errs, fmt.Errorf("%s.level: %q, want debug, info, warn or error", key, c.Level))
	}
	switch c.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("%s.format: %q, want text or json", key, c.Format))
	}
	return errs
}

func (c Config) level() (slog.Level, error) {
	switch l := strings.ToLower(c.Level); l {
	case "debug", "info", "warn", "error":
		var lv slog.Level
		return lv, lv.UnmarshalText([]byte(l))
	}
	return 0, fmt.Errorf("unknown level %q", c.Level)
}

// New builds the logger for a validated Config; an invalid level logs at
// info, an unknown format as text.
func New(c Config, w io.Writer) *slog.Logger {
	lv, _ := c.level()
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
