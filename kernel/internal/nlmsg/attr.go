package nlmsg

import (
	"encoding/binary"
	"fmt"
)

// AppendAttr appends one attribute (header, value, padding to 4 bytes).
func AppendAttr(b []byte, typ uint16, val []byte) []byte {
	l := AttrHdrLen + len(val)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for range Align(l) - l {
		b = append(b, 0)
	}
	return b
}

// AppendU16, AppendU32 and AppendU64 append an integer attribute.
func AppendU16(b []byte, typ uint16, v uint16) []byte {
	return AppendAttr(b, typ, binary.NativeEndian.AppendUint16(nil, v))
}

func AppendU32(b []byte, typ uint16, v uint32) []byte {
	return AppendAttr(b, typ, binary.NativeEndian.AppendUint32(nil, v))
}

func AppendU64(b []byte, typ uint16, v uint64) []byte {
	return AppendAttr(b, typ, binary.NativeEndian.AppendUint64(nil, v))
}

// AttrIter walks an attribute stream (a message body after its fixed
// header, or a nested attribute's value) without allocating.
type AttrIter struct {
	b   []byte
	off int
	// Type (flags masked off) and Val are the current attribute.
	Type uint16
	Val  []byte
	err  error
}

// Attrs returns an iterator over the attributes in b.
func Attrs(b []byte) AttrIter { return AttrIter{b: b} }

// Next advances to the next attribute; it returns false at the end or on a
// framing error (then Err is set).
func (it *AttrIter) Next() bool {
	if it.err != nil || it.off >= len(it.b) {
		return false
	}
	rest := it.b[it.off:]
	if len(rest) < AttrHdrLen {
		it.err = fmt.Errorf("%w: %d trailing bytes at offset %d", ErrMalformed, len(rest), it.off)
		return false
	}
	l := int(binary.NativeEndian.Uint16(rest[0:2]))
	if l < AttrHdrLen || l > len(rest) {
		it.err = fmt.Errorf("%w: attribute length %d at offset %d (%d bytes left)", ErrMalformed, l, it.off, len(rest))
		return false
	}
	it.Type = binary.NativeEndian.Uint16(rest[2:4]) & AttrTypeMask
	it.Val = rest[AttrHdrLen:l]
	it.off += min(Align(l), len(rest))
	return true
}

// Err is the framing error that ended the walk, if any.
func (it *AttrIter) Err() error { return it.err }

// U8, U16, U32 and U64 read the current attribute as an integer; a value
// of another size is an ErrMalformed error.
func (it *AttrIter) U8() (uint8, error) {
	if len(it.Val) != 1 {
		return 0, it.sizeErr(1)
	}
	return it.Val[0], nil
}

func (it *AttrIter) U16() (uint16, error) {
	if len(it.Val) != 2 {
		return 0, it.sizeErr(2)
	}
	return binary.NativeEndian.Uint16(it.Val), nil
}

func (it *AttrIter) U32() (uint32, error) {
	if len(it.Val) != 4 {
		return 0, it.sizeErr(4)
	}
	return binary.NativeEndian.Uint32(it.Val), nil
}

func (it *AttrIter) U64() (uint64, error) {
	if len(it.Val) != 8 {
		return 0, it.sizeErr(8)
	}
	return binary.NativeEndian.Uint64(it.Val), nil
}

func (it *AttrIter) sizeErr(want int) error {
	return fmt.Errorf("%w: attribute %d has %d bytes, want %d", ErrMalformed, it.Type, len(it.Val), want)
}
