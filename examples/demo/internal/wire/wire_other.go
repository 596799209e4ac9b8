//go:build !linux

package wire

import (
	"context"
	"errors"
	"time"
)

// Wire is Linux only.
type Wire struct{}

// Open fails: AF_PACKET is Linux only.
func Open(a, b string) (*Wire, error) { return nil, errors.New("wire: needs Linux") }

// SetDelay does nothing.
func (w *Wire) SetDelay(ab, ba time.Duration) {}

// Delay returns zero.
func (w *Wire) Delay() (ab, ba time.Duration) { return 0, 0 }

// Stats returns zero.
func (w *Wire) Stats() (ab, ba Stats) { return Stats{}, Stats{} }

// Start does nothing.
func (w *Wire) Start() {}

// Close does nothing.
func (w *Wire) Close() error { return nil }

// Run returns at once.
func (w *Wire) Run(context.Context) error { return nil }
