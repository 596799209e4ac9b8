package agent

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Pipeline decodes events and aggregates them; flushed records go to the
// exporter. Handle is safe for concurrent use (calls are serialised).
type Pipeline struct {
	window  time.Duration
	local   LocalNode
	carrier map[uint16]ioam6.CarrierConfig

	mu       sync.Mutex
	agg      *Aggregator
	obs      Observation
	now      func() int64
	m        *Metrics
	received prometheus.Counter
	decoded  prometheus.Counter
	bad      map[string]prometheus.Counter

	wg     sync.WaitGroup
	cancel context.CancelFunc
	once   sync.Once
	stop   sync.Once
}

// LocalNode is this node's IOAM identity, by which the pipeline recognises
// its own entry in a trace: ID (net.ipv6.ioam6_id) when the trace type has
// bit 0, else WideID (net.ipv6.ioam6_id_wide) when it has bit 8.
type LocalNode struct {
	ID     uint32 // 24 bits
	WideID uint64 // 56 bits
}

// NewPipeline builds the decode+aggregate stage. local is this node's
// identity, cfg.NodeName its name in every record; source names the metrics
// label of received events.
func NewPipeline(cfg Config, local LocalNode, source string, m *Metrics, exp Exporter) *Pipeline {
	p := &Pipeline{
		window:   cfg.Aggregation.Window,
		local:    local,
		carrier:  map[uint16]ioam6.CarrierConfig{},
		m:        m,
		now:      func() int64 { return time.Now().UnixNano() },
		received: m.EventsReceived.WithLabelValues(source),
		decoded:  m.EventsDecoded,
		bad:      map[string]prometheus.Counter{},
	}
	for _, ns := range cfg.Namespaces {
		nc, _ := cfg.carrierFor(uint16(ns.ID))
		c, _ := ioam6.ParseCarrier(nc.Carrier) // validated by Config.Validate
		p.carrier[uint16(ns.ID)] = ioam6.CarrierConfig{Carrier: c, SchemaID: *nc.SchemaID}
	}
	p.agg = NewAggregator(cfg.Aggregation.MaxOpen, local.ID, m, exp.Export)
	p.agg.reporterName = cfg.NodeName
	return p
}

// Start runs the window flusher (unless the window is 0: every event is its
// own record).
func (p *Pipeline) Start(ctx context.Context) error {
	p.once.Do(func() {
		if p.window <= 0 {
			return
		}
		ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
		p.wg.Go(func() {
			t := time.NewTicker(p.window)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					p.Flush()
				}
			}
		})
	})
	return nil
}

// Handle processes one batch from a source.
func (p *Pipeline) Handle(batch []Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received.Add(float64(len(batch)))
	for i := range batch {
		ev := &batch[i]
		if ev.SeenUnixNano == 0 {
			ev.SeenUnixNano = p.now()
		}
		if reason := p.decode(ev, &p.obs); reason != "" {
			p.malformed(reason)
			continue
		}
		p.decoded.Inc()
		p.agg.Add(&p.obs)
		if p.window <= 0 {
			p.agg.Flush()
		}
	}
}

func (p *Pipeline) malformed(reason string) {
	c, ok := p.bad[reason]
	if !ok {
		c = p.m.EventsMalformed.WithLabelValues(reason)
		p.bad[reason] = c
	}
	c.Inc()
}

// Malformed counts an event a source could not turn into an Event.
func (p *Pipeline) Malformed(reason string) {
	p.mu.Lock()
	p.malformed(reason)
	p.mu.Unlock()
}

// Flush emits every open aggregate now.
func (p *Pipeline) Flush() {
	p.mu.Lock()
	p.agg.Flush()
	p.mu.Unlock()
}

// Close stops the flusher and flushes what is open. Idempotent.
func (p *Pipeline) Close() error {
	p.stop.Do(func() {
		if p.cancel != nil {
			p.cancel()
		}
		p.wg.Wait()
		p.Flush()
	})
	return nil
}
