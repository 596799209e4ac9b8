package agent_test

import (
	"os"

	"github.com/cross-layer-telemetry/clt/agent"
	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

// The stdout exporter prints each record as one JSON line, a decoded and
// aggregated `ip ioam monitor` (export.stdout: true; with
// aggregation.window: 0 every packet is its own record).
func ExampleStdoutExporter() {
	e := agent.NewStdoutExporter(os.Stdout)
	e.Export([]*collectorv1.IOAMRecord{{
		TraceId:        []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10},
		SpanId:         []byte{0x5a, 0x5a, 0, 0, 0, 0, 0, 1},
		NamespaceId:    123,
		TraceType:      0xF00002,
		ReporterNodeId: 3,
		ReporterWrote:  true,
		Packets:        2,
		Carrier:        "oss",
		Hops: []*collectorv1.Hop{
			{Fields: 0xF00002, HopLimit: 64, NodeId: 1, IngressIf: 0xFFFF, EgressIf: 10},
			{Fields: 0xF00002, HopLimit: 63, NodeId: 2, IngressIf: 21, EgressIf: 22},
		},
	}})
	_ = e.Close()
	// Prints (protojson spacing is deliberately unstable, so this example
	// is not checked):
	// {"trace_id":"ASNFZ4mrze/+3LqYdlQyEA==","span_id":"WloAAAAAAAE=","namespace_id":123, ...}
}
