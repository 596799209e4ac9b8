package netnstest

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
)

// Event is one decoded ioam6_events message, copied out of the subscriber's
// buffer.
type Event struct {
	NamespaceID uint16
	Type        ioam6.TraceType
	// Nodes are the entries in path order (first node of the path first;
	// for the oss carrier the sender's own entry). Snapshot data is copied.
	Nodes  []ioam6.Node
	IDs    ioam6.IDs
	HasIDs bool
	// Err is the decode error, if any (Nodes/IDs then partial or empty).
	Err error
	// Received is when the recorder read the event.
	Received time.Time
}

// NodeIDs returns the node ids in path order.
func (e Event) NodeIDs() []uint32 {
	ids := make([]uint32, len(e.Nodes))
	for i, n := range e.Nodes {
		ids[i] = n.NodeID
	}
	return ids
}

// Recorder subscribes to ioam6_events in a node and keeps every decoded
// event in memory (tests only: unbounded up to MaxEvents).
type Recorder struct {
	sub *ioam6nl.Subscriber
	cc  ioam6.CarrierConfig

	mu     sync.Mutex
	cond   chan struct{} // closed and replaced on every append
	events []Event
	wg     sync.WaitGroup
	once   sync.Once
}

// MaxEvents bounds a Recorder's memory; later events are dropped.
const MaxEvents = 100_000

// Record starts a Recorder in the node, decoding with cc. The topology
// closes it on Close; closing it earlier is fine.
func (n *Node) Record(cc ioam6.CarrierConfig) (*Recorder, error) {
	sub, err := n.Subscribe(ioam6nl.DefaultSubscriberConfig())
	if err != nil {
		return nil, err
	}
	r := &Recorder{sub: sub, cc: cc, cond: make(chan struct{})}
	r.wg.Add(1)
	go r.loop()
	n.topo.mu.Lock()
	n.topo.recorders = append(n.topo.recorders, r)
	n.topo.mu.Unlock()
	return r, nil
}

func (r *Recorder) loop() {
	defer r.wg.Done()
	buf := make([]ioam6.EventAttrs, 64)
	for {
		k, err := r.sub.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // deadlines are not used; other errors are transient
		}
		now := time.Now()
		out := make([]Event, 0, k)
		for _, ev := range buf[:k] {
			out = append(out, decode(ev, r.cc, now))
		}
		r.mu.Lock()
		if room := MaxEvents - len(r.events); room > 0 {
			r.events = append(r.events, out[:min(room, len(out))]...)
		}
		close(r.cond)
		r.cond = make(chan struct{})
		r.mu.Unlock()
	}
}

func decode(ev ioam6.EventAttrs, cc ioam6.CarrierConfig, now time.Time) Event {
	e := Event{NamespaceID: ev.NamespaceID, Type: ev.TraceType(), Received: now}
	tr, err := ioam6.DecodeEvent(ev, cc)
	if err != nil {
		e.Err = err
		return e
	}
	e.IDs, e.HasIDs = tr.IDs, tr.HasIDs
	it := tr.Nodes()
	for it.Next() {
		nd := it.Node()
		nd.Snapshot.Data = append([]byte(nil), nd.Snapshot.Data...)
		e.Nodes = append(e.Nodes, nd)
	}
	e.Err = it.Err()
	return e
}

// Events returns a copy of the events so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// WaitFor blocks until done(events) is true or ctx ends; it returns the
// events seen last and whether done held.
func (r *Recorder) WaitFor(ctx context.Context, done func([]Event) bool) ([]Event, bool) {
	for {
		r.mu.Lock()
		evs := append([]Event(nil), r.events...)
		ch := r.cond
		r.mu.Unlock()
		if done(evs) {
			return evs, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return evs, false
		}
	}
}

// Stats returns the subscriber's counters.
func (r *Recorder) Stats() ioam6nl.SubscriberStats { return r.sub.Stats() }

// Close stops the recorder and waits for its goroutine. Idempotent.
func (r *Recorder) Close() error {
	var err error
	r.once.Do(func() {
		err = r.sub.Close()
		r.wg.Wait()
	})
	return err
}
