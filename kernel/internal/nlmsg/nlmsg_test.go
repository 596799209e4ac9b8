package nlmsg

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ne16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }
func ne32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// msg is one message as the kernel sends it: header, payload, padding.
func msg(typ uint16, seq uint32, payload []byte) []byte {
	b := Request(typ, 0, seq, payload)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// TestRequestGolden: struct nlmsghdr {len, type, flags, seq, pid} in host
// order, then the parts; the CTRL_CMD_GETFAMILY request for "IOAM6".
func TestRequestGolden(t *testing.T) {
	name := append([]byte("IOAM6"), 0)
	b := Request(0x10 /* GENL_ID_CTRL */, 0x1|0x4 /* REQUEST|ACK */, 1,
		[]byte{3 /* CTRL_CMD_GETFAMILY */, 2, 0, 0}, AppendAttr(nil, 2 /* CTRL_ATTR_FAMILY_NAME */, name))
	want := cat(
		ne32(32), ne16(0x10), ne16(0x5), ne32(1), ne32(0), // nlmsghdr
		[]byte{3, 2, 0, 0},                                   // genlmsghdr
		ne16(10), ne16(2), []byte("IOAM6\x00"), []byte{0, 0}, // nlattr + value + padding
	)
	assert.Equal(t, want, b)
	h := ParseHeader(b)
	assert.Equal(t, Header{Len: 32, Type: 0x10, Flags: 0x5, Seq: 1}, h)
	assert.Equal(t, 4, Align(1))
	assert.Equal(t, 8, Align(8))
}

func TestAppendIntegers(t *testing.T) {
	assert.Equal(t, cat(ne16(6), ne16(1), ne16(123), []byte{0, 0}), AppendU16(nil, 1, 123))
	assert.Equal(t, cat(ne16(8), ne16(2), ne32(7)), AppendU32(nil, 2, 7))
	b := AppendU64(nil, 3, 1<<40)
	require.Len(t, b, 12)
	assert.Equal(t, uint64(1<<40), binary.NativeEndian.Uint64(b[4:]))
	assert.Equal(t, cat(ne16(4), ne16(6)), AppendAttr(nil, 6, nil), "flag attribute")
}

func TestAttrIter(t *testing.T) {
	b := cat(AppendU16(nil, 1, 123), AppendU32(nil, 2|0x8000 /* NLA_F_NESTED */, 7), AppendAttr(nil, 5, []byte("ABCDE")), AppendU64(nil, 3, 9))
	it := Attrs(b)
	var types []uint16
	for it.Next() {
		types = append(types, it.Type)
		switch it.Type {
		case 1:
			v, err := it.U16()
			require.NoError(t, err)
			assert.EqualValues(t, 123, v)
			_, err = it.U32()
			assert.ErrorIs(t, err, ErrMalformed, "size mismatch")
		case 2:
			v, err := it.U32()
			require.NoError(t, err)
			assert.EqualValues(t, 7, v)
		case 5:
			assert.Equal(t, []byte("ABCDE"), it.Val, "padding is not part of the value")
			_, err := it.U8()
			assert.ErrorIs(t, err, ErrMalformed)
		case 3:
			v, err := it.U64()
			require.NoError(t, err)
			assert.EqualValues(t, 9, v)
		}
	}
	require.NoError(t, it.Err())
	assert.Equal(t, []uint16{1, 2, 5, 3}, types, "flags are masked off the type")

	for name, bad := range map[string][]byte{
		"truncated header":    AppendU32(nil, 1, 7)[:3],
		"length past end":     AppendU32(nil, 1, 7)[:7],
		"length below header": cat(ne16(2), ne16(1)),
		"trailing bytes":      cat(AppendU32(nil, 1, 7), []byte{0, 0}),
	} {
		it := Attrs(bad)
		for it.Next() {
		}
		assert.ErrorIs(t, it.Err(), ErrMalformed, name)
	}
	// A last attribute without its padding is accepted (the kernel pads,
	// but a nested value may end exactly).
	it = Attrs(cat(ne16(5), ne16(1), []byte{9}))
	require.True(t, it.Next())
	assert.Equal(t, []byte{9}, it.Val)
	assert.False(t, it.Next())
	assert.NoError(t, it.Err())
}

func TestMessages(t *testing.T) {
	d := cat(msg(20, 1, []byte{1}), msg(21, 2, nil), msg(22, 3, ne32(5)))
	it := Messages(d)
	var got []Header
	for it.Next() {
		got = append(got, it.Header)
		assert.Len(t, it.Payload, int(it.Header.Len)-HdrLen)
	}
	require.NoError(t, it.Err())
	assert.Equal(t, []Header{{Len: 17, Type: 20, Seq: 1}, {Len: 16, Type: 21, Seq: 2}, {Len: 20, Type: 22, Seq: 3}}, got)

	it = Messages(cat(msg(20, 1, nil), ne32(100), make([]byte, 12)))
	require.True(t, it.Next())
	assert.False(t, it.Next())
	assert.ErrorIs(t, it.Err(), ErrMalformed)
	it = Messages(make([]byte, HdrLen-1))
	assert.False(t, it.Next(), "shorter than a header: nothing")
	assert.NoError(t, it.Err())
}

func TestParseError(t *testing.T) {
	assert.NoError(t, ParseError(ne32(0)), "ack")
	err := ParseError(ne32(uint32(0x100000000 - int64(syscall.EEXIST))))
	assert.True(t, errors.Is(err, syscall.EEXIST), "%v", err)
	assert.ErrorIs(t, ParseError([]byte{0}), ErrMalformed)
}

func TestReplies(t *testing.T) {
	const seq = 7
	var seen []uint16
	collect := func(typ uint16, _ []byte) (bool, error) {
		seen = append(seen, typ)
		return false, nil
	}
	done, err := Replies(cat(msg(30, seq-1, nil), msg(30, seq, nil), msg(31, seq, nil)), seq, collect)
	require.NoError(t, err)
	assert.False(t, done, "a dump goes on until DONE")
	assert.Equal(t, []uint16{30, 31}, seen, "the stale reply is skipped")

	done, err = Replies(msg(typeDone, seq, ne32(0)), seq, collect)
	assert.True(t, done)
	assert.NoError(t, err)
	done, err = Replies(msg(typeError, seq, ne32(0)), seq, collect)
	assert.True(t, done)
	assert.NoError(t, err, "ack")
	_, err = Replies(msg(typeError, seq, ne32(uint32(0x100000000-int64(syscall.ENOENT)))), seq, collect)
	assert.True(t, errors.Is(err, syscall.ENOENT), "%v", err)
	_, err = Replies(msg(typeError, seq-1, ne32(uint32(0x100000000-int64(syscall.ENOENT)))), seq, collect)
	assert.NoError(t, err, "a stale error is not ours")

	done, err = Replies(cat(msg(40, seq, []byte("x")), msg(41, seq, nil)), seq, func(typ uint16, p []byte) (bool, error) {
		return typ == 40, nil
	})
	assert.True(t, done, "fn ends the request")
	assert.NoError(t, err)
	boom := errors.New("boom")
	_, err = Replies(msg(40, seq, nil), seq, func(uint16, []byte) (bool, error) { return false, boom })
	assert.ErrorIs(t, err, boom)

	done, err = Replies(cat(ne32(100), make([]byte, 12)), seq, collect)
	assert.True(t, done)
	assert.ErrorIs(t, err, ErrMalformed)
}

// FuzzAttrs: the walk never reads outside b, each value fits its declared
// length, and a walk without error consumed the whole stream.
func FuzzAttrs(f *testing.F) {
	f.Add(cat(AppendU16(nil, 1, 123), AppendAttr(nil, 5, []byte("ABCDE"))))
	f.Add(cat(ne16(2), ne16(1)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		it := Attrs(b)
		consumed := 0
		for it.Next() {
			l := AttrHdrLen + len(it.Val)
			if it.Type&^AttrTypeMask != 0 {
				t.Fatalf("type %#x keeps flag bits", it.Type)
			}
			consumed += min(Align(l), len(b)-consumed)
			if consumed > len(b) {
				t.Fatalf("walked %d of %d bytes", consumed, len(b))
			}
		}
		if it.Err() == nil && consumed != len(b) {
			t.Fatalf("no error but %d of %d bytes consumed", consumed, len(b))
		}
		if it.Err() != nil && !errors.Is(it.Err(), ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", it.Err())
		}
	})
}

// FuzzMessages: every message returned has a consistent header and payload.
func FuzzMessages(f *testing.F) {
	f.Add(cat(msg(20, 1, []byte{1}), msg(2, 1, ne32(0))))
	f.Add(cat(ne32(100), make([]byte, 12)))
	f.Fuzz(func(t *testing.T, b []byte) {
		it := Messages(b)
		for it.Next() {
			if int(it.Header.Len) < HdrLen || int(it.Header.Len) > len(b) || len(it.Payload) != int(it.Header.Len)-HdrLen {
				t.Fatalf("header %+v with %d payload bytes", it.Header, len(it.Payload))
			}
		}
		if it.Err() != nil && !errors.Is(it.Err(), ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", it.Err())
		}
		_, _ = Replies(b, 1, func(uint16, []byte) (bool, error) { return false, nil })
	})
}

func BenchmarkWalk(b *testing.B) {
	d := cat(msg(30, 0, cat([]byte{1, 1, 0, 0}, AppendU16(nil, 1, 123), AppendU32(nil, 3, 0xF00000), AppendAttr(nil, 4, make([]byte, 48)))))
	b.ReportAllocs()
	for b.Loop() {
		it := Messages(d)
		for it.Next() {
			a := Attrs(it.Payload[GenlHdrLen:])
			for a.Next() {
			}
		}
	}
}
