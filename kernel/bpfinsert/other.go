//go:build !linux

package bpfinsert

import (
	"errors"
	"log/slog"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// ErrUnsupported: the inserter needs Linux.
var errUnsupported = errors.New("bpfinsert: needs Linux 6.6+")

// Inserter is unavailable off Linux.
type Inserter struct{}

// Interface is one attached interface.
type Interface struct {
	Name      string
	Index     int
	MTU       int
	HeaderLen int
	MSSMax    int
}

// New fails off Linux.
func New(cfg Config, logger *slog.Logger) (*Inserter, error) { return nil, errUnsupported }

// Check fails off Linux.
func Check() error { return errUnsupported }

func (in *Inserter) Interfaces() []Interface                      { return nil }
func (in *Inserter) SetSocket(cookie uint64, ids ioam6.IDs) error { return errUnsupported }
func (in *Inserter) ClearSocket(cookie uint64) error              { return errUnsupported }
func (in *Inserter) Stats() (Stats, error)                        { return Stats{}, errUnsupported }
func (in *Inserter) Close() error                                 { return nil }

// DefaultSocketMapPin is the documented place of the per-socket map.
const DefaultSocketMapPin = "/sys/fs/bpf/clt/sockets"

// SocketMap is unavailable off Linux.
type SocketMap struct{}

// OpenSocketMap fails off Linux.
func OpenSocketMap(path string) (*SocketMap, error) { return nil, errUnsupported }

func (s *SocketMap) Loaded() bool                                 { return false }
func (s *SocketMap) SetSocket(cookie uint64, ids ioam6.IDs) error { return errUnsupported }
func (s *SocketMap) ClearSocket(cookie uint64) error              { return errUnsupported }
func (s *SocketMap) Close() error                                 { return nil }
