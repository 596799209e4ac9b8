package ioam6nl

import (
	"errors"
	"fmt"
	"time"
)

// ReadMode selects how a Subscriber waits for events.
type ReadMode string

// Read modes.
const (
	// ReadNetpoll keeps the socket in Go's netpoller: Read returns as soon
	// as an event is queued. The netpoller registers the socket
	// edge-triggered, so every event datagram wakes a runtime thread even
	// while nobody reads. Fine for tests and low rates. The default.
	ReadNetpoll ReadMode = "netpoll"
	// ReadBatch keeps the socket out of the netpoller. Read drains it with
	// non-blocking recvmmsg(2); after a Read that emptied the socket, the
	// next Read first pauses BatchWait so that events queue in the kernel,
	// and it blocks in ppoll(2) only when the socket is empty. A busy
	// subscriber then costs one wake-up per batch, not per event (figures in
	// docs/benchmarks.md).
	ReadBatch ReadMode = "batch"
)

// SubscriberConfig configures an ioam6_events subscriber.
type SubscriberConfig struct {
	// NetNSPath is the network namespace to listen in, e.g.
	// /var/run/netns/NAME or /proc/PID/ns/net; "" is the calling thread's.
	NetNSPath string `yaml:"netns_path"`
	// ReceiveBuffer is the socket receive buffer in bytes, set with
	// SO_RCVBUFFORCE (CAP_NET_ADMIN; falls back to SO_RCVBUF, capped by
	// net.core.rmem_max). The kernel drops events (ENOBUFS) when it fills.
	// Each queued event costs about 1 KiB of buffer (skb truesize).
	ReceiveBuffer int `yaml:"receive_buffer"`
	// ReadBuffer is the user-space buffer one Read call fills with as many
	// queued events as fit; event data references it until the next Read.
	// In batch mode it is cut in slots of 1 KiB, one datagram each.
	ReadBuffer int `yaml:"read_buffer"`
	// Mode is netpoll (default) or batch (mode); see [ReadMode].
	Mode ReadMode `yaml:"mode"`
	// BatchWait is how long a batch-mode Read pauses before reading again
	// after the previous Read emptied the socket (batch_wait); 0 never
	// pauses. Ignored in netpoll mode. The receive buffer must hold what
	// arrives meanwhile (about 1 KiB per event).
	BatchWait time.Duration `yaml:"batch_wait"`
}

// Limits of SubscriberConfig.
const (
	DefaultReceiveBuffer = 8 << 20
	DefaultReadBuffer    = 64 << 10
	minReadBuffer        = 4 << 10
	maxReceiveBuffer     = 1 << 30
	DefaultBatchWait     = 5 * time.Millisecond
	maxBatchWait         = time.Second
	// readHeadroom is the space kept free for one more datagram; an IOAM
	// event is at most 16+4+8+8+8+4+255 bytes (rounded up generously).
	readHeadroom = 1 << 10
)

// DefaultSubscriberConfig returns the defaults: calling thread's netns,
// 8 MiB receive buffer, 64 KiB read buffer, netpoll mode (5 ms batch wait
// if switched to batch mode).
func DefaultSubscriberConfig() SubscriberConfig {
	return SubscriberConfig{ReceiveBuffer: DefaultReceiveBuffer, ReadBuffer: DefaultReadBuffer,
		Mode: ReadNetpoll, BatchWait: DefaultBatchWait}
}

// Validate reports every invalid field, naming its YAML key.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if c.ReceiveBuffer < 0 || c.ReceiveBuffer > maxReceiveBuffer {
		errs = append(errs, fmt.Errorf("receive_buffer must be in [0, %d] (0 = default), got %d", maxReceiveBuffer, c.ReceiveBuffer))
	}
	if c.ReadBuffer != 0 && c.ReadBuffer < minReadBuffer {
		errs = append(errs, fmt.Errorf("read_buffer must be 0 (default) or at least %d, got %d", minReadBuffer, c.ReadBuffer))
	}
	switch c.Mode {
	case "", ReadNetpoll, ReadBatch:
	default:
		errs = append(errs, fmt.Errorf("mode must be %q or %q, got %q", ReadNetpoll, ReadBatch, c.Mode))
	}
	if c.BatchWait < 0 || c.BatchWait > maxBatchWait {
		errs = append(errs, fmt.Errorf("batch_wait must be in [0, %s], got %s", maxBatchWait, c.BatchWait))
	}
	return errors.Join(errs...)
}

func (c SubscriberConfig) withDefaults() SubscriberConfig {
	if c.ReceiveBuffer == 0 {
		c.ReceiveBuffer = DefaultReceiveBuffer
	}
	if c.ReadBuffer == 0 {
		c.ReadBuffer = DefaultReadBuffer
	}
	if c.Mode == "" {
		c.Mode = ReadNetpoll
	}
	return c
}

// SubscriberStats are cumulative counters of a Subscriber.
type SubscriberStats struct {
	// Events is the number of trace events returned by Read.
	Events uint64
	// Overruns counts ENOBUFS: the kernel dropped at least one event each
	// time because the receive buffer was full. The number of events lost
	// is not known.
	Overruns uint64
	// Ignored counts messages that are not IOAM6_EVENT_TRACE.
	Ignored uint64
	// Malformed counts trace events whose attributes could not be parsed
	// and, in batch mode, datagrams longer than a slot (truncated).
	Malformed uint64
}
