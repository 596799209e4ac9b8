package ioam6nl

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errMalformed marks netlink messages whose framing or attributes are bad.
var errMalformed = errors.New("malformed netlink message")

// nlaAlign rounds n up to the netlink attribute alignment.
func nlaAlign(n int) int { return (n + nlaAlignTo - 1) &^ (nlaAlignTo - 1) }

// appendAttr appends one attribute (host-order header) and its padding.
func appendAttr(b []byte, typ uint16, val []byte) []byte {
	l := nlaHdrLen + len(val)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for range nlaAlign(l) - l {
		b = append(b, 0)
	}
	return b
}

func appendU16(b []byte, typ uint16, v uint16) []byte {
	return appendAttr(b, typ, binary.NativeEndian.AppendUint16(nil, v))
}

func appendU32(b []byte, typ uint16, v uint32) []byte {
	return appendAttr(b, typ, binary.NativeEndian.AppendUint32(nil, v))
}

func appendU64(b []byte, typ uint16, v uint64) []byte {
	return appendAttr(b, typ, binary.NativeEndian.AppendUint64(nil, v))
}

// attrIter walks a netlink attribute stream without allocating.
type attrIter struct {
	b   []byte
	off int
	typ uint16
	val []byte
	err error
}

// next advances to the next attribute; it returns false at the end or on a
// framing error (then err is set).
func (it *attrIter) next() bool {
	if it.err != nil || it.off >= len(it.b) {
		return false
	}
	rest := it.b[it.off:]
	if len(rest) < nlaHdrLen {
		it.err = fmt.Errorf("%w: %d trailing bytes at offset %d", errMalformed, len(rest), it.off)
		return false
	}
	l := int(binary.NativeEndian.Uint16(rest[0:2]))
	if l < nlaHdrLen || l > len(rest) {
		it.err = fmt.Errorf("%w: attribute length %d at offset %d (%d bytes left)", errMalformed, l, it.off, len(rest))
		return false
	}
	it.typ = binary.NativeEndian.Uint16(rest[2:4]) & nlaTypeMask
	it.val = rest[nlaHdrLen:l]
	it.off += min(nlaAlign(l), len(rest))
	return true
}

func (it *attrIter) u8() (uint8, error) {
	if len(it.val) != 1 {
		return 0, it.sizeErr(1)
	}
	return it.val[0], nil
}

func (it *attrIter) u16() (uint16, error) {
	if len(it.val) != 2 {
		return 0, it.sizeErr(2)
	}
	return binary.NativeEndian.Uint16(it.val), nil
}

func (it *attrIter) u32() (uint32, error) {
	if len(it.val) != 4 {
		return 0, it.sizeErr(4)
	}
	return binary.NativeEndian.Uint32(it.val), nil
}

func (it *attrIter) u64() (uint64, error) {
	if len(it.val) != 8 {
		return 0, it.sizeErr(8)
	}
	return binary.NativeEndian.Uint64(it.val), nil
}

func (it *attrIter) sizeErr(want int) error {
	return fmt.Errorf("%w: attribute %d has %d bytes, want %d", errMalformed, it.typ, len(it.val), want)
}

// Namespace is one IOAM namespace of a network namespace, as `ip ioam
// namespace show` prints it.
type Namespace struct {
	ID uint16
	// Data is the 32-bit namespace data (trace bit 5); nil means unset
	// (the kernel then writes 0xFFFFFFFF).
	Data *uint32
	// DataWide is the 64-bit namespace data (trace bit 10); nil means unset.
	DataWide *uint64
	// SchemaID is the attached schema, nil if none.
	SchemaID *uint32
}

// Schema is one IOAM opaque-state schema.
type Schema struct {
	ID   uint32 // 24 significant bits on the wire
	Data []byte // at most MaxSchemaDataLen bytes; the kernel pads to 4n
	// NamespaceID is the namespace the schema is attached to, nil if none.
	NamespaceID *uint16
}

// MaxSchemaID is the largest schema id that fits the 24-bit snapshot field.
const MaxSchemaID = 0xFFFFFF

func encodeNamespace(ns Namespace) []byte {
	b := appendU16(nil, attrNsID, ns.ID)
	if ns.Data != nil {
		b = appendU32(b, attrNsData, *ns.Data)
	}
	if ns.DataWide != nil {
		b = appendU64(b, attrNsDataWide, *ns.DataWide)
	}
	return b
}

func decodeNamespace(b []byte) (Namespace, error) {
	var ns Namespace
	var haveID bool
	it := attrIter{b: b}
	for it.next() {
		var err error
		switch it.typ {
		case attrNsID:
			ns.ID, err = it.u16()
			haveID = true
		case attrNsData:
			var v uint32
			if v, err = it.u32(); err == nil && v != u32Unavailable {
				ns.Data = &v
			}
		case attrNsDataWide:
			var v uint64
			if v, err = it.u64(); err == nil && v != u64Unavailable {
				ns.DataWide = &v
			}
		case attrScID:
			var v uint32
			if v, err = it.u32(); err == nil {
				ns.SchemaID = &v
			}
		}
		if err != nil {
			return Namespace{}, err
		}
	}
	if it.err != nil {
		return Namespace{}, it.err
	}
	if !haveID {
		return Namespace{}, fmt.Errorf("%w: namespace without IOAM6_ATTR_NS_ID", errMalformed)
	}
	return ns, nil
}

func decodeSchema(b []byte) (Schema, error) {
	var sc Schema
	var haveID bool
	it := attrIter{b: b}
	for it.next() {
		var err error
		switch it.typ {
		case attrScID:
			sc.ID, err = it.u32()
			haveID = true
		case attrScData:
			sc.Data = append([]byte(nil), it.val...)
		case attrNsID:
			var v uint16
			if v, err = it.u16(); err == nil {
				sc.NamespaceID = &v
			}
		}
		if err != nil {
			return Schema{}, err
		}
	}
	if it.err != nil {
		return Schema{}, it.err
	}
	if !haveID {
		return Schema{}, fmt.Errorf("%w: schema without IOAM6_ATTR_SC_ID", errMalformed)
	}
	return sc, nil
}

func checkSchema(sc Schema) error {
	if sc.ID > MaxSchemaID {
		return fmt.Errorf("ioam6nl: schema id %d exceeds 24 bits", sc.ID)
	}
	if len(sc.Data) > MaxSchemaDataLen {
		return fmt.Errorf("ioam6nl: schema %d data is %d bytes, at most %d", sc.ID, len(sc.Data), MaxSchemaDataLen)
	}
	return nil
}
