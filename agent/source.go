package agent

import (
	"context"
	"errors"
)

// ErrNotSupported is returned by sources that do not exist on this platform or kernel.
var ErrNotSupported = errors.New("agent: not supported")

// ErrCheckFailed is returned by Check when something the agent needs is missing.
var ErrCheckFailed = errors.New("check: node is not ready")

// Event is one raw IOAM trace as a node sees it after its own processing: the
// attributes of the kernel's IOAM6_EVENT_TRACE message (docs/wire-format.md §6).
// A capture source fills the same fields from the packet.
type Event struct {
	NamespaceID uint16
	NodeLen     uint8
	// TraceType is the 24-bit trace type (the netlink attribute >> 8).
	TraceType uint32
	// Data is trace_data[RemLen*4:]: the filled entries, newest first, then
	// whatever follows the pre-allocated area. It aliases the source's buffer.
	Data []byte
	// Option, when set, is the whole IOAM option TLV from a captured packet
	// (kernel/ioam6.FindIOAMOption); it replaces the fields above and brings
	// the trace header with its Overflow flag. It aliases the source's buffer.
	Option []byte
	// SeenUnixNano is the receive time.
	SeenUnixNano int64
}

// Source yields batches of events. Run calls handle synchronously from one
// goroutine; the batch and every Data slice are reused after handle returns.
// Run returns nil when ctx ends or Close is called.
type Source interface {
	// Name is "netlink" or "capture" (the source label of the metrics).
	Name() string
	Run(ctx context.Context, handle func([]Event)) error
	// Close unblocks Run. Idempotent.
	Close() error
}

// captureOnHostProblem is what check and the agent's log say about a capture
// source on a node that does not forward: capture reads the egress copy of
// packets (after this node's write), so a destination host, which sends none
// of the traffic it receives, sees nothing; its ingress copy would be the
// packet before its own write, which the upstream router's report already
// holds.
const captureOnHostProblem = "capture source on a node that does not forward (net.ipv6.conf.all.forwarding = 0): " +
	"capture reads only the packets this node sends, so as a destination it reports nothing; " +
	"use the netlink source (Linux >= 6.9), which reports the destination's own hop"
