package bpfinsert

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

func testIDs(short bool) ioam6.IDs {
	ids := ioam6.IDs{Short: short}
	for i := range ids.TraceID {
		if !short || i >= 8 {
			ids.TraceID[i] = byte(0x10 + i)
		}
	}
	for i := range ids.SpanID {
		ids.SpanID[i] = byte(0xa0 + i)
	}
	return ids
}

// patch does to a template what the program does to a packet.
func patch(t bpfTmpl, ids ioam6.IDs, sec, frac uint32) []byte {
	b := append([]byte(nil), t.Hdr[:t.Len]...)
	if t.IDsLen == ioam6.IDLen {
		copy(b[t.IDsOff:], ids.TraceID[:])
		copy(b[t.IDsOff+16:], ids.SpanID[:])
	} else {
		copy(b[t.IDsOff:], ids.TraceID[8:])
		copy(b[t.IDsOff+8:], ids.SpanID[:])
	}
	if t.TSSecOff != 0 {
		binary.BigEndian.PutUint32(b[t.TSSecOff:], sec)
	}
	if t.TSFracOff != 0 {
		binary.BigEndian.PutUint32(b[t.TSFracOff:], frac)
	}
	return b
}

// The template with the IDs and timestamp patched in is AppendHBH's header
// for those values, for every supported layout.
func TestTemplateMatchesAppendHBH(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     ioam6.TraceType
		slots   int
		carrier ioam6.Carrier
	}{
		{"default", DefaultTraceType, DefaultHopSlots, ioam6.CarrierOSS},
		{"no-timestamps", ioam6.BitHopLimitNodeID | ioam6.BitIfIDs, 3, ioam6.CarrierOSS},
		{"wide", 0xFFF000, 2, ioam6.CarrierOSS},
		{"zero-slots", DefaultTraceType, 0, ioam6.CarrierOSS},
		{"tail", DefaultTraceType, 4, ioam6.CarrierTail},
	} {
		for _, short := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				c := DefaultConfig()
				c.TraceType, c.HopSlots, c.Carrier = tc.typ, tc.slots, tc.carrier
				spec := c.spec(ownEntry(7, 0x1000007, 71, 0x10047))
				tm, err := buildTemplate(spec, short)
				require.NoError(t, err)
				ids := testIDs(short)
				if tc.carrier != ioam6.CarrierOSS {
					ids.Short = false // as decoded; the bytes are the same
				}
				spec.Own.TimestampSec, spec.Own.TimestampFrac = 1_700_000_123, 456_789
				want, err := ioam6.AppendHBH(nil, spec, ids)
				require.NoError(t, err)
				got := patch(tm, ids, 1_700_000_123, 456_789)
				assert.Equal(t, want, got)
				hasTS := tc.carrier == ioam6.CarrierOSS && tc.typ&ioam6.BitTimestampSec != 0
				assert.Equal(t, hasTS, tm.TSSecOff != 0)
			})
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.Interfaces = []string{"eth0"}
	c.Prefixes = []string{"fd00::/8"}
	require.NoError(t, c.Validate())

	bad := DefaultConfig()
	bad.Interfaces = []string{"eth0", "eth0", strings.Repeat("x", 16)}
	bad.Prefixes = []string{"10.0.0.0/8", "nope"}
	bad.Ports = []uint16{0}
	bad.HopSlots = 200
	bad.Carrier = ioam6.CarrierCLTv1
	bad.MaxSockets = 0
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"duplicated", "interfaces[2]", "not an IPv6 prefix", "prefixes[1]", "ports[0]",
		"hop_slots", "carrier", "max_sockets"} {
		assert.Contains(t, err.Error(), want)
	}
	var none Config
	err = none.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "interfaces: at least one")
	assert.Contains(t, err.Error(), "prefixes: at least one")
}
