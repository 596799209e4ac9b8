package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/cross-layer-telemetry/clt/agent"
	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
)

// The stdout exporter prints each record as one JSON line, a decoded and
// aggregated `ip ioam monitor` (export.stdout: true; with
// aggregation.window: 0 every packet is its own record).
func ExampleStdoutExporter() {
	var out bytes.Buffer
	e := agent.NewStdoutExporter(&out)
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
	// protojson varies its spacing on purpose; compact each line to print it.
	lines := bufio.NewScanner(&out)
	for lines.Scan() {
		var line bytes.Buffer
		if err := json.Compact(&line, lines.Bytes()); err != nil {
			panic(err)
		}
		fmt.Println(line.String())
	}
	// Output:
	// {"trace_id":"ASNFZ4mrze/+3LqYdlQyEA==","span_id":"WloAAAAAAAE=","namespace_id":123,"trace_type":15728642,"reporter_node_id":3,"reporter_wrote":true,"packets":"2","hops":[{"fields":15728642,"hop_limit":64,"node_id":1,"ingress_if":65535,"egress_if":10},{"fields":15728642,"hop_limit":63,"node_id":2,"ingress_if":21,"egress_if":22}],"carrier":"oss"}
}
