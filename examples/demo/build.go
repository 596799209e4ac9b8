package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const modulePath = "github.com/cross-layer-telemetry/clt"

// repoRoot finds the module root from the working directory upward.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isModuleRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("module %s not found above the working directory; run from the repository", modulePath)
		}
		dir = parent
	}
}

func isModuleRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == modulePath
		}
	}
	return false
}

// buildBinaries compiles clt-storage and clt-agent into binDir. `go build`
// skips the link when the binary is up to date, so this is cheap when nothing
// changed.
func buildBinaries(ctx context.Context, log *slog.Logger, root, binDir string) error {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	for _, b := range []struct{ name, pkg string }{
		{"clt-storage", "./plugin/cmd/clt-storage"},
		{"clt-agent", "./agent/cmd/clt-agent"},
	} {
		log.Info("building", "binary", b.name)
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", filepath.Join(binDir, b.name), b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// ensureJaeger returns the Jaeger binary: explicit path, $JAEGER_BIN, or
// <root>/.cache/bin/jaeger, built with `make jaeger` when missing.
func ensureJaeger(ctx context.Context, log *slog.Logger, root, explicit string, build bool) (string, error) {
	bin := explicit
	if bin == "" {
		bin = os.Getenv("JAEGER_BIN")
	}
	if bin == "" {
		bin = filepath.Join(root, ".cache", "bin", "jaeger")
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("jaeger binary %s: %w", bin, err)
	}
	if !build {
		return "", fmt.Errorf("jaeger binary %s missing (run make jaeger or set JAEGER_BIN)", bin)
	}
	log.Info("building Jaeger v2.13.0 with make jaeger (first time: several minutes)")
	cmd := exec.CommandContext(ctx, "make", "jaeger")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "JAEGER_BIN="+bin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("make jaeger: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("make jaeger did not produce %s: %w", bin, err)
	}
	return bin, nil
}
