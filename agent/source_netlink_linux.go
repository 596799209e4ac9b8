package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
)

// netlinkSource reads the kernel's ioam6_events (Linux >= 6.9, CAP_NET_ADMIN)
// with an ioam6nl.Subscriber in batch mode (ioam6nl.ReadBatch): the socket
// stays out of Go's netpoller, each Read drains it with recvmmsg(2), and
// after a Read that emptied it the next one pauses source.batch_wait while
// events queue in the kernel. A busy node then costs one wake-up per batch,
// not per event (docs/benchmarks.md has the CPU per event).
type netlinkSource struct {
	sub   *ioam6nl.Subscriber
	lost  prometheus.Counter
	bad   func(string)
	attrs []ioam6.EventAttrs
	batch []Event
	seen  ioam6nl.SubscriberStats // the counters already reported
}

var _ Source = (*netlinkSource)(nil)

const (
	// nlBatch is the number of events per Read (one recvmmsg(2) call).
	nlBatch = 256
	// nlSlot is the read buffer ioam6nl gives each datagram in batch mode.
	nlSlot = 1 << 10
)

// newNetlinkSource joins ioam6_events in ns (netns.None(): the current one).
// Errors wrap ioam6nl.ErrFamilyNotFound and ioam6nl.ErrNoEventGroup.
func newNetlinkSource(ns netns.NsHandle, sc SourceConfig, m *Metrics, bad func(string)) (*netlinkSource, error) {
	sub, err := ioam6nl.SubscribeNetNS(ns, ioam6nl.SubscriberConfig{
		ReceiveBuffer: sc.ReceiveBuffer,
		ReadBuffer:    nlBatch * nlSlot,
		Mode:          ioam6nl.ReadBatch,
		BatchWait:     sc.BatchWait,
	})
	if err != nil {
		return nil, fmt.Errorf("netlink source: %w", err)
	}
	return &netlinkSource{sub: sub, lost: m.EventsLost.WithLabelValues(SourceNetlink), bad: bad,
		attrs: make([]ioam6.EventAttrs, nlBatch), batch: make([]Event, nlBatch)}, nil
}

func (s *netlinkSource) Name() string { return SourceNetlink }

// Run hands every Read over as one batch until ctx ends or Close is
// called, then releases the socket.
func (s *netlinkSource) Run(ctx context.Context, handle func([]Event)) error {
	defer s.sub.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.sub.Close() })
	defer stop()
	for {
		n, err := s.sub.Read(s.attrs)
		s.account(s.sub.Stats())
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("netlink source: %w", err)
		}
		if n > 0 {
			handle(toEvents(s.batch, s.attrs[:n], time.Now().UnixNano()))
		}
	}
}

// account reports what the subscriber counted since the last call: ENOBUFS
// (each loses one or more events) and malformed or truncated messages.
func (s *netlinkSource) account(st ioam6nl.SubscriberStats) {
	if d := st.Overruns - s.seen.Overruns; d > 0 {
		s.lost.Add(float64(d))
	}
	for range st.Malformed - s.seen.Malformed {
		s.bad(ReasonTruncated)
	}
	s.seen = st
}

// toEvents converts netlink attributes into dst (len(dst) >= len(src)); Data
// keeps aliasing the subscriber's buffer.
func toEvents(dst []Event, src []ioam6.EventAttrs, now int64) []Event {
	dst = dst[:len(src)]
	for i, a := range src {
		dst[i] = Event{NamespaceID: a.NamespaceID, NodeLen: a.NodeLen, TraceType: uint32(a.TraceType()),
			Data: a.Data, SeenUnixNano: now}
	}
	return dst
}

// Close stops Run (or releases the socket when Run never ran). Idempotent.
func (s *netlinkSource) Close() error { return s.sub.Close() }
