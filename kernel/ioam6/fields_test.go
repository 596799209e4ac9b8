package ioam6

import (
	"errors"
	"testing"
)

func TestAvailability(t *testing.T) {
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"node id default", NodeIDAvailable(0xFFFFFF), false},
		{"node id set", NodeIDAvailable(2), true},
		{"wide node id default", WideNodeIDAvailable(0xFFFFFFFFFFFFFF), false},
		{"wide node id set", WideNodeIDAvailable(0x1000000000002), true},
		{"if id default", IfIDAvailable(0xFFFF), false},
		{"if id zero", IfIDAvailable(0), true},
		{"wide if id default", WideIfIDAvailable(0xFFFFFFFF), false},
		{"queue depth unavailable", U32Available(0xFFFFFFFF), false},
		{"queue depth zero", U32Available(0), true},
		{"wide ns data unavailable", U64Available(0xFFFFFFFFFFFFFFFF), false},
		{"snapshot none", SnapshotAvailable(SchemaIDNone, 0), false},
		{"snapshot schema only", SnapshotAvailable(DefaultSchemaID, 0), true},
		{"snapshot data without schema", SnapshotAvailable(SchemaIDNone, 2), true},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestTransitDelayNs(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		ns   uint32
		want bool
	}{{0, 0, true}, {1234, 1234, true}, {0x7FFFFFFF, 0x7FFFFFFF, true}, {0x80000001, 0, false}, {0xFFFFFFFF, 0, false}} {
		ns, ok := TransitDelayNs(c.in)
		if ns != c.ns || ok != c.want {
			t.Errorf("TransitDelayNs(%#x) = %d, %v; want %d, %v", c.in, ns, ok, c.ns, c.want)
		}
	}
}

func TestTimestampUnixNano(t *testing.T) {
	both := BitTimestampSec | BitTimestampFrac
	for _, c := range []struct {
		name      string
		fields    TraceType
		sec, frac uint32
		ns        int64
		ok        bool
	}{
		{"sec and µs", both, 1700000000, 250, 1700000000_000250000, true},
		{"sec only", BitTimestampSec, 1700000000, 999, 1700000000_000000000, true},
		{"frac only", BitTimestampFrac, 0, 250, 0, false},
		{"frac not µs", both, 1700000000, 1_000_000, 0, false},
		{"sec unavailable", both, 0xFFFFFFFF, 0xFFFFFFFF, 0, false},
		{"largest µs", both, 1, 999_999, 1_999_999_000, true},
	} {
		ns, ok := TimestampUnixNano(c.fields, c.sec, c.frac)
		if ns != c.ns || ok != c.ok {
			t.Errorf("%s: got %d, %v; want %d, %v", c.name, ns, ok, c.ns, c.ok)
		}
		n := Node{Fields: c.fields, TimestampSec: c.sec, TimestampFrac: c.frac}
		if ts, ok := n.Timestamp(); ok != c.ok || (ok && ts.UnixNano() != c.ns) {
			t.Errorf("%s: Node.Timestamp disagrees: %v, %v", c.name, ts, ok)
		}
	}
}

func TestFormatsAndParse(t *testing.T) {
	if got := FormatNodeID(3); got != "3" {
		t.Errorf("FormatNodeID = %q", got)
	}
	if got := FormatWideID(0x1000000000002); got != "0x1000000000002" {
		t.Errorf("FormatWideID = %q", got)
	}
	if got := FormatSchemaID(DefaultSchemaID); got != "0x000c17" {
		t.Errorf("FormatSchemaID = %q", got)
	}
	for in, want := range map[string]uint64{"3": 3, "0x3": 3, "0X1000000000002": 0x1000000000002, " 42 ": 42, "0xffffffffffffff": WideNodeIDUnavailable} {
		if v, err := ParseNodeID(in); err != nil || v != want {
			t.Errorf("ParseNodeID(%q) = %d, %v; want %d", in, v, err, want)
		}
	}
	for _, v := range []uint64{0, 7, 0xFFFFFF, 0x1000000000002, WideNodeIDUnavailable} {
		if got, err := ParseNodeID(FormatWideID(v)); err != nil || got != v {
			t.Errorf("wide %d does not round-trip: %d, %v", v, got, err)
		}
		if v <= 0xFFFFFF {
			if got, err := ParseNodeID(FormatNodeID(uint32(v))); err != nil || got != v {
				t.Errorf("short %d does not round-trip: %d, %v", v, got, err)
			}
		}
	}
	for _, in := range []string{"", "0x", "node 3", "-1", "0x100000000000000", "3.5"} {
		if _, err := ParseNodeID(in); !errors.Is(err, ErrNodeIDSyntax) {
			t.Errorf("ParseNodeID(%q): err %v, want ErrNodeIDSyntax", in, err)
		}
	}
}
