package plugin

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamapi"
	"github.com/cross-layer-telemetry/clt/api/compat/ioamtrace"
)

// FuzzRecord feeds arbitrary collector bytes through what the server does
// with a record: validate, convert for the store, and enrich a span with it
// (valid or not, since enrichment must also survive a corrupted store). None
// of it may panic, and a valid record must round-trip the store encoding.
func FuzzRecord(f *testing.F) {
	for _, r := range []*collectorv1.IOAMRecord{rec(3, 0, 1, 2, 3), rec(2, 0, 1), {}} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ra, rb collectorv1.IOAMRecord
		if proto.Unmarshal(a, &ra) != nil || proto.Unmarshal(b, &rb) != nil {
			return
		}
		ra.SpanId, rb.SpanId = testSpanID, testSpanID
		sp := newSpan()
		EnrichSpan(sp, []*collectorv1.IOAMRecord{&ra, &rb})
		if len(validateRecord("r", &ra, 64)) != 0 {
			return
		}
		sr, err := toStoreRecord(&ra, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		var back collectorv1.IOAMRecord
		if err := proto.Unmarshal(sr.Data, &back); err != nil || !proto.Equal(&ra, &back) {
			t.Fatalf("store encoding does not round-trip: %v", err)
		}
	})
}

// FuzzCompat feeds arbitrary bytes as reports of the original CLT agents.
func FuzzCompat(f *testing.F) {
	seed, _ := proto.Marshal(&ioamapi.IOAMTrace{TraceId_Low: 1, SpanId: 2, BitField: 0xf00000,
		Nodes: []*ioamapi.IOAMNode{{Id: 1, NamespaceData: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}}}})
	f.Add(seed)
	// Invariant: a compat report is never rejected for a hop's field (those
	// are dropped from the hop and named); only record-level problems (ids,
	// namespace, hop count) reject it.
	hopLevel := func(t *testing.T, r *collectorv1.IOAMRecord) {
		for _, fe := range validateRecord("r", r, 64) {
			if strings.HasPrefix(fe.path, "r.hops[") {
				t.Fatalf("compat record rejected for a hop field: %v", fe)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a ioamapi.IOAMTrace
		if proto.Unmarshal(b, &a) == nil {
			r, _ := FromIOAMAPITrace(&a, time.Unix(0, 0))
			hopLevel(t, r)
			EnrichSpan(newSpan(), []*collectorv1.IOAMRecord{r})
		}
		var d ioamtrace.IOAMTrace
		if proto.Unmarshal(b, &d) == nil {
			r, _ := FromIOAMTrace(&d, time.Unix(0, 0))
			hopLevel(t, r)
			EnrichSpan(newSpan(), []*collectorv1.IOAMRecord{r})
		}
	})
}
