//go:build !linux

package ioam6nl

import (
	"context"
	"errors"
	"time"

	"github.com/vishvananda/netns"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// ErrNotSupported is returned on platforms other than Linux.
var ErrNotSupported = errors.New("ioam6nl: IOAM generic netlink is supported on Linux only")

// Sentinels shared with the Linux build.
var (
	ErrFamilyNotFound = errors.New("ioam6nl: IOAM6 generic netlink family not found (Linux 5.15+ needed)")
	ErrNoEventGroup   = errors.New("ioam6nl: IOAM6 family has no ioam6_events group (Linux 6.9+ needed)")
)

// Conn is unavailable outside Linux.
type Conn struct{}

// Dial returns ErrNotSupported.
func Dial() (*Conn, error) { return nil, ErrNotSupported }

// DialNetNS returns ErrNotSupported.
func DialNetNS(netns.NsHandle) (*Conn, error) { return nil, ErrNotSupported }

// DialPath returns ErrNotSupported.
func DialPath(string) (*Conn, error) { return nil, ErrNotSupported }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// HasEvents reports false.
func (c *Conn) HasEvents() bool { return false }

// AddNamespace returns ErrNotSupported.
func (c *Conn) AddNamespace(context.Context, Namespace) error { return ErrNotSupported }

// DeleteNamespace returns ErrNotSupported.
func (c *Conn) DeleteNamespace(context.Context, uint16) error { return ErrNotSupported }

// Namespaces returns ErrNotSupported.
func (c *Conn) Namespaces(context.Context) ([]Namespace, error) { return nil, ErrNotSupported }

// AddSchema returns ErrNotSupported.
func (c *Conn) AddSchema(context.Context, Schema) error { return ErrNotSupported }

// DeleteSchema returns ErrNotSupported.
func (c *Conn) DeleteSchema(context.Context, uint32) error { return ErrNotSupported }

// Schemas returns ErrNotSupported.
func (c *Conn) Schemas(context.Context) ([]Schema, error) { return nil, ErrNotSupported }

// SetNamespaceSchema returns ErrNotSupported.
func (c *Conn) SetNamespaceSchema(context.Context, uint16, uint32) error { return ErrNotSupported }

// ClearNamespaceSchema returns ErrNotSupported.
func (c *Conn) ClearNamespaceSchema(context.Context, uint16) error { return ErrNotSupported }

// Subscriber is unavailable outside Linux.
type Subscriber struct{}

// Subscribe returns ErrNotSupported.
func Subscribe(SubscriberConfig) (*Subscriber, error) { return nil, ErrNotSupported }

// SubscribeNetNS returns ErrNotSupported.
func SubscribeNetNS(netns.NsHandle, SubscriberConfig) (*Subscriber, error) {
	return nil, ErrNotSupported
}

// Read returns ErrNotSupported.
func (s *Subscriber) Read([]ioam6.EventAttrs) (int, error) { return 0, ErrNotSupported }

// SetReadDeadline returns ErrNotSupported.
func (s *Subscriber) SetReadDeadline(time.Time) error { return ErrNotSupported }

// Overruns returns 0.
func (s *Subscriber) Overruns() uint64 { return 0 }

// Stats returns zero counters.
func (s *Subscriber) Stats() SubscriberStats { return SubscriberStats{} }

// Close does nothing.
func (s *Subscriber) Close() error { return nil }

// RunInNetNS runs fn in place when ns is not open, else ErrNotSupported.
func RunInNetNS(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	return ErrNotSupported
}
