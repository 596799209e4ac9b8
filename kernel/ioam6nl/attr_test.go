//go:build linux

package ioam6nl

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// ne builds host-order integers for hand-written attribute streams.
func ne16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// eventData is DATA as r2 sent it in docs/wire-format.md §6 (layout b, 3 slots).
var eventData = []byte{
	0x3e, 0x00, 0x00, 0x03, 0x00, 0x1f, 0x00, 0x20, 0x6b, 0x09, 0x52, 0x28, 0x00, 0x08, 0x4c, 0x90, // r2
	0x3f, 0x00, 0x00, 0x02, 0x00, 0x15, 0x00, 0x16, 0x6b, 0x09, 0x52, 0x28, 0x00, 0x08, 0x4c, 0x7f, // r1
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, // trace id
	0x5a, 0x5a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // span id
}

// eventAttrs is the attribute stream of that event (host-order headers).
func eventAttrs() []byte {
	return cat(
		ne16(6), ne16(1), ne16(123), []byte{0, 0}, // TRACE_NAMESPACE u16 = 123, padded
		ne16(5), ne16(2), []byte{4, 0, 0, 0}, // TRACE_NODELEN u8 = 4, padded
		ne16(8), ne16(3), ne32(0xf0000000), // TRACE_TYPE u32 = 0xF00000 << 8
		ne16(uint16(4+len(eventData))), ne16(4), eventData, // TRACE_DATA
	)
}

func TestParseEventGolden(t *testing.T) {
	b := eventAttrs()
	ev, err := parseEvent(b)
	require.NoError(t, err)
	assert.EqualValues(t, 123, ev.NamespaceID)
	assert.EqualValues(t, 4, ev.NodeLen)
	assert.EqualValues(t, 0xf0000000, ev.Type)
	assert.EqualValues(t, 0xF00000, ev.TraceType())
	assert.Equal(t, eventData, ev.Data)
	assert.Same(t, &b[len(b)-len(eventData)], &ev.Data[0], "Data aliases the input")

	tr, err := ioam6.DecodeEvent(ev, ioam6.CarrierConfig{Carrier: ioam6.CarrierTail})
	require.NoError(t, err)
	assert.Equal(t, 2, tr.Hops())
	newest, ok := tr.Newest()
	require.True(t, ok)
	assert.EqualValues(t, 3, newest.NodeID)
	assert.EqualValues(t, 0x5a5a, binary.BigEndian.Uint16(tr.IDs.SpanID[:2]))
}

func TestParseEventErrors(t *testing.T) {
	good := eventAttrs()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"truncated header", good[:3]},
		{"length past end", good[:len(good)-1]},
		{"length below header", cat(ne16(2), ne16(1))},
		{"u16 of 4 bytes", cat(ne16(8), ne16(1), ne32(123), good[8:])},
		{"missing data", good[:24]},
		{"u8 of 2 bytes", cat(good[:8], ne16(6), ne16(2), []byte{4, 0, 0, 0}, good[16:])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := parseEvent(tc.b)
			require.ErrorIs(t, err, errMalformed)
			assert.Equal(t, ioam6.EventAttrs{}, ev)
		})
	}
	// Unknown attributes are skipped.
	ev, err := parseEvent(cat(ne16(8), ne16(99), ne32(7), good))
	require.NoError(t, err)
	assert.EqualValues(t, 123, ev.NamespaceID)
}

func FuzzParseEvent(f *testing.F) {
	f.Add(eventAttrs())
	f.Add([]byte{})
	f.Add(cat(ne16(8), ne16(99), ne32(7)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseEvent(b)
		if err != nil {
			if ev.Data != nil || ev.NamespaceID != 0 {
				t.Fatalf("non-zero result on error: %+v", ev)
			}
			return
		}
		// Accepted events are safe to hand to the decoder.
		_, _ = ioam6.DecodeEvent(ev, ioam6.CarrierConfig{})
	})
}

func TestNamespaceRoundTrip(t *testing.T) {
	d, w, sc := uint32(0x12300002), uint64(0x1230000000000002), uint32(777)
	tests := []Namespace{
		{ID: 123},
		{ID: 124, Data: &d},
		{ID: 125, Data: &d, DataWide: &w},
	}
	for _, ns := range tests {
		got, err := decodeNamespace(encodeNamespace(ns))
		require.NoError(t, err)
		assert.Equal(t, ns, got)
	}
	// A dump with schema, a PAD attribute before the u64 (nla_put_u64_64bit)
	// and "unavailable" data, which reads as unset.
	dump := cat(
		ne16(6), ne16(attrNsID), ne16(123), []byte{0, 0},
		ne16(8), ne16(attrScID), ne32(sc),
		ne16(8), ne16(attrNsData), ne32(ioam6.U32Unavailable),
		ne16(4), ne16(attrPad),
		nlmsg.AppendU64(nil, attrNsDataWide, w),
	)
	got, err := decodeNamespace(dump)
	require.NoError(t, err)
	assert.Equal(t, Namespace{ID: 123, DataWide: &w, SchemaID: &sc}, got)
	_, err = decodeNamespace(nlmsg.AppendU32(nil, attrNsData, d))
	require.ErrorIs(t, err, errMalformed, "no id")
}

func TestSchemaDecodeAndChecks(t *testing.T) {
	ns := uint16(123)
	b := cat(nlmsg.AppendU32(nil, attrScID, 777), nlmsg.AppendAttr(nil, attrScData, []byte("ABCD")), nlmsg.AppendU16(nil, attrNsID, 123))
	got, err := decodeSchema(b)
	require.NoError(t, err)
	assert.Equal(t, Schema{ID: 777, Data: []byte("ABCD"), NamespaceID: &ns}, got)
	b[len(b)-9] ^= 0xFF // corrupt the data so the copy is checked
	assert.Equal(t, []byte("ABCD"), got.Data, "schema data is copied")

	require.Error(t, checkSchema(Schema{ID: MaxSchemaID + 1}))
	require.Error(t, checkSchema(Schema{ID: 1, Data: make([]byte, MaxSchemaDataLen+1)}))
	require.NoError(t, checkSchema(Schema{ID: MaxSchemaID, Data: make([]byte, MaxSchemaDataLen)}))
}

// testMsg is one netlink message as the kernel sends it (padded).
func testMsg(typ uint16, seq uint32, payload []byte) []byte {
	b := nlmsg.Request(typ, 0, seq, payload)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestHandleReplies(t *testing.T) {
	const fam, seq = 30, 7
	genl := func(attrs []byte) []byte { return cat([]byte{cmdDumpNamespaces, familyVersion, 0, 0}, attrs) }
	var seen []uint16
	fn := func(b []byte) error {
		ns, err := decodeNamespace(b)
		seen = append(seen, ns.ID)
		return err
	}
	// A stale reply (other seq), two namespaces, then DONE.
	dgram := cat(
		testMsg(fam, seq-1, genl(nlmsg.AppendU16(nil, attrNsID, 1))),
		testMsg(fam, seq, genl(nlmsg.AppendU16(nil, attrNsID, 123))),
		testMsg(fam, seq, genl(nlmsg.AppendU16(nil, attrNsID, 124))),
	)
	done, err := handleReplies(dgram, fam, seq, fn)
	require.NoError(t, err)
	assert.False(t, done)
	done, err = handleReplies(testMsg(3 /* NLMSG_DONE */, seq, ne32(0)), fam, seq, fn)
	require.NoError(t, err)
	assert.True(t, done)
	assert.Equal(t, []uint16{123, 124}, seen)

	// An ack, and an error carrying -EEXIST.
	done, err = handleReplies(testMsg(2 /* NLMSG_ERROR */, seq, ne32(0)), fam, seq, nil)
	require.NoError(t, err)
	assert.True(t, done)
	_, err = handleReplies(testMsg(2, seq, ne32(uint32(0x100000000-int64(syscall.EEXIST)))), fam, seq, nil)
	require.True(t, errors.Is(err, syscall.EEXIST), "%v", err)

	// Bad framing.
	_, err = handleReplies(cat(ne32(100), make([]byte, 12)), fam, seq, nil)
	require.ErrorIs(t, err, errMalformed)
}

func TestSubscriberParseCounts(t *testing.T) {
	sub := &Subscriber{famID: 30}
	ev := cat([]byte{ioam6.EventTrace, 1, 0, 0}, eventAttrs())
	dgram := cat(
		testMsg(30, 0, ev),
		testMsg(31, 0, ev), // another family
		testMsg(30, 0, cat([]byte{2, 1, 0, 0}, eventAttrs())),             // another command
		testMsg(30, 0, cat([]byte{ioam6.EventTrace, 1, 0, 0}, ne16(100))), // bad attrs
	)
	out := make([]ioam6.EventAttrs, 4)
	n := sub.parse(dgram, out)
	require.Equal(t, 1, n)
	assert.EqualValues(t, 123, out[0].NamespaceID)
	st := sub.Stats()
	assert.EqualValues(t, 2, st.Ignored)
	assert.EqualValues(t, 1, st.Malformed)
}

func TestSubscriberConfigValidate(t *testing.T) {
	require.NoError(t, DefaultSubscriberConfig().Validate())
	require.NoError(t, SubscriberConfig{}.Validate(), "zero means defaults")
	err := SubscriberConfig{ReceiveBuffer: -1, ReadBuffer: 10}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "receive_buffer")
	assert.Contains(t, err.Error(), "read_buffer")

	ok := DefaultSubscriberConfig()
	ok.Mode, ok.BatchWait = ReadBatch, 0
	require.NoError(t, ok.Validate(), "batch mode without a pause")
	err = SubscriberConfig{Mode: "epoll", BatchWait: -time.Millisecond}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "mode")
	assert.Contains(t, err.Error(), "batch_wait")
	require.ErrorContains(t, SubscriberConfig{BatchWait: 2 * time.Second}.Validate(), "batch_wait")
	assert.Equal(t, ReadNetpoll, SubscriberConfig{}.withDefaults().Mode)
}
