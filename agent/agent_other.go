//go:build !linux

package agent

import (
	"context"
	"fmt"
	"io"
)

type kernel struct{}

func openKernel(string) (*kernel, error)    { return nil, fmt.Errorf("kernel: %w", ErrNotSupported) }
func (*kernel) close()                      {}
func (*kernel) nodeID() (uint32, error)     { return 0, ErrNotSupported }
func (*kernel) wideNodeID() (uint64, error) { return 0, ErrNotSupported }
func (*kernel) forwards() (bool, error)     { return false, ErrNotSupported }
func (*kernel) setup(context.Context, *SetupConfig) ([]string, error) {
	return nil, ErrNotSupported
}
func (*kernel) openSource(SourceConfig, *Metrics, func(string)) (Source, string, error) {
	return nil, "", ErrNotSupported
}

// Check is not supported outside Linux.
func Check(context.Context, Config, io.Writer) error { return ErrNotSupported }
