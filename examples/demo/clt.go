package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cross-layer-telemetry/clt/kernel/clt"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// cltFlags configure athos's CLT transport (kernel/clt.Config).
type cltFlags struct {
	enabled   bool
	namespace uint
	slots     int
	traceType uint
	carrier   string
	schemaID  uint
}

func (c *cltFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "clt", true, "athos: send sub-requests through the CLT transport (IOAM HBH with the span IDs)")
	fs.UintVar(&c.namespace, "ioam-ns", ioamNamespace, "athos: IOAM namespace id")
	fs.IntVar(&c.slots, "ioam-slots", clt.DefaultHopSlots, "athos: pre-allocated hop slots for transit nodes")
	fs.UintVar(&c.traceType, "ioam-trace-type", uint(clt.DefaultTraceType), "athos: IOAM trace type (24 bits; the oss carrier adds bit 22)")
	fs.StringVar(&c.carrier, "ioam-carrier", "oss", "athos: trace-context carrier (oss, tail, clt-v1)")
	fs.UintVar(&c.schemaID, "ioam-schema", 0x000C17, "athos: opaque snapshot schema id of the oss carrier")
}

func (c *cltFlags) config() (clt.Config, error) {
	cfg := clt.DefaultConfig()
	if c.namespace > 0xFFFF {
		return cfg, fmt.Errorf("-ioam-ns %d: want 0..65535", c.namespace)
	}
	carrier, err := ioam6.ParseCarrier(c.carrier)
	if err != nil {
		return cfg, fmt.Errorf("-ioam-carrier: %w", err)
	}
	cfg.Namespace = uint16(c.namespace)
	cfg.HopSlots = c.slots
	cfg.TraceType = ioam6.TraceType(c.traceType)
	cfg.Carrier = carrier
	cfg.SchemaID = uint32(c.schemaID)
	// The demo exists to show IOAM: fail the request rather than send it
	// silently without the option (e.g. without CAP_NET_RAW).
	cfg.Strict = true
	return cfg, cfg.Validate()
}

// reportSlots is what athos pre-allocates for /api/report's sub-request:
// one slot for two IOAM nodes (porthos and aramis), so aramis finds the
// trace full and the trace overflows.
const reportSlots = 1

// transport wraps base with the CLT transport. The returned func releases
// idle connections; stats reports the injector's counters (nil when off).
func (c *cltFlags) transport(log *slog.Logger, base *http.Transport) (http.RoundTripper, func() cltStats, error) {
	if !c.enabled {
		log.Warn("CLT transport disabled: sub-requests carry no IOAM")
		return base, nil, nil
	}
	cfg, err := c.config()
	if err != nil {
		return nil, nil, err
	}
	inj, err := clt.New(cfg, clt.Settings{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	// Our base has its own DialContext, so it must dial through the injector
	// for the SYN to carry the option too.
	base.DialContext = inj.Dialer(&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	log.Info("CLT transport", "namespace", cfg.Namespace, "hop_slots", cfg.HopSlots,
		"trace_type", cfg.TraceType.String(), "carrier", cfg.Carrier.String())
	stats := func() cltStats {
		s := inj.Stats()
		return cltStats{Applied: s.Applied, Cleared: s.Cleared, Untraced: s.Untraced, Skipped: s.SkippedTotal()}
	}
	return clt.NewTransport(base, inj), stats, nil
}

// cltStats is athos's /debug/clt: the injectors' counters.
type cltStats struct {
	Applied  uint64 `json:"applied"`
	Cleared  uint64 `json:"cleared"`
	Untraced uint64 `json:"untraced"`
	Skipped  uint64 `json:"skipped"`
}

// sumStats adds the counters of every transport (nil ones are off).
func sumStats(fns ...func() cltStats) cltStats {
	var t cltStats
	for _, f := range fns {
		if f == nil {
			continue
		}
		s := f()
		t.Applied += s.Applied
		t.Cleared += s.Cleared
		t.Untraced += s.Untraced
		t.Skipped += s.Skipped
	}
	return t
}

// routeSwitchClient calls the demo's route switch (reroute.go) over the
// management network: no CLT transport, no IOAM.
func routeSwitchClient(url string) func(ctx context.Context, via string) error {
	hc := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context, via string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url+"?via="+via, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("route switch: %w", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("route switch: status %d: %s", resp.StatusCode, body)
		}
		return nil
	}
}
