package agent

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// FuzzPipelineHandle feeds arbitrary event attributes and captured options to
// the decode+aggregate path: it never panics, and every event is either
// decoded or counted as malformed.
func FuzzPipelineHandle(f *testing.F) {
	own := ownNode(f, 1, testIDs, ioam6.DefaultSchemaID)
	f.Add(uint16(123), uint8(4), uint32(typeOSS), eventData(f, linuxNode(3, 62, 1), linuxNode(2, 63, 1), own), false)
	f.Add(uint16(123), uint8(5), uint32(typeOSS), eventData(f, own), false)
	hbh, err := ioam6.AppendHBH(nil, ioam6.HBHSpec{NamespaceID: 123, Type: typeOSS &^ ioam6.BitOpaqueStateSnapshot,
		Slots: 2, Carrier: ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS}, Own: own}, testIDs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(0), uint8(0), uint32(0), hbh[4:], true)
	f.Fuzz(func(t *testing.T, ns uint16, nodeLen uint8, typ uint32, data []byte, isOption bool) {
		cfg := testConfig()
		cfg.Namespaces = append(cfg.Namespaces, NamespaceConfig{ID: 124, Carrier: CarrierTail}, NamespaceConfig{ID: 125, Carrier: CarrierCLTv1})
		cfg.Aggregation.MaxOpen = 2
		m := NewMetrics()
		p := NewPipeline(cfg, LocalNode{ID: 3}, SourceNetlink, m, emitTo(func([]*collectorv1.IOAMRecord) {}))
		ev := Event{NamespaceID: ns, NodeLen: nodeLen, TraceType: typ & 0xFFFFFF, Data: data}
		if isOption {
			ev = Event{Option: data}
		}
		p.Handle([]Event{ev, ev})
		p.Flush()
		var malformed float64
		for _, r := range []string{ReasonUnconfiguredNamespace, ReasonNodeLen, ReasonTruncated, ReasonCarrier,
			ReasonTraceType, ReasonSnapshot, ReasonPacket, ReasonOther} {
			malformed += testutil.ToFloat64(m.EventsMalformed.WithLabelValues(r))
		}
		if got := testutil.ToFloat64(m.EventsDecoded) + malformed; got != 2 {
			t.Fatalf("decoded+malformed = %v, want 2", got)
		}
	})
}
