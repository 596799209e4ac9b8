package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netns"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
)

// netlinkSource reads the kernel's ioam6_events (Linux >= 6.9, CAP_NET_ADMIN).
type netlinkSource struct {
	sub  *ioam6nl.Subscriber
	lost prometheus.Counter
	once sync.Once
}

var _ Source = (*netlinkSource)(nil)

// newNetlinkSource subscribes in ns (netns.None(): the current one).
func newNetlinkSource(ns netns.NsHandle, rcvbuf int, m *Metrics) (*netlinkSource, error) {
	cfg := ioam6nl.DefaultSubscriberConfig()
	cfg.ReceiveBuffer = rcvbuf
	sub, err := ioam6nl.SubscribeNetNS(ns, cfg)
	if err != nil {
		return nil, fmt.Errorf("netlink source: %w", err)
	}
	return &netlinkSource{sub: sub, lost: m.EventsLost.WithLabelValues(SourceNetlink)}, nil
}

func (s *netlinkSource) Name() string { return SourceNetlink }

func (s *netlinkSource) Run(ctx context.Context, handle func([]Event)) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	attrs := make([]ioam6.EventAttrs, 256)
	batch := make([]Event, 0, len(attrs))
	var overruns uint64
	for {
		n, err := s.sub.Read(attrs)
		if o := s.sub.Overruns(); o != overruns {
			s.lost.Add(float64(o - overruns))
			overruns = o
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("netlink source: %w", err)
		}
		now := time.Now().UnixNano()
		batch = batch[:0]
		for _, a := range attrs[:n] {
			batch = append(batch, Event{
				NamespaceID: a.NamespaceID, NodeLen: a.NodeLen, TraceType: a.Type >> 8, Data: a.Data, SeenUnixNano: now,
			})
		}
		if len(batch) > 0 {
			handle(batch)
		}
	}
}

func (s *netlinkSource) Close() error {
	var err error
	s.once.Do(func() { err = s.sub.Close() })
	return err
}
