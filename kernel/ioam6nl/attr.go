package ioam6nl

import (
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// errMalformed marks netlink messages whose framing or attributes are bad.
var errMalformed = nlmsg.ErrMalformed

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
	b := nlmsg.AppendU16(nil, attrNsID, ns.ID)
	if ns.Data != nil {
		b = nlmsg.AppendU32(b, attrNsData, *ns.Data)
	}
	if ns.DataWide != nil {
		b = nlmsg.AppendU64(b, attrNsDataWide, *ns.DataWide)
	}
	return b
}

func decodeNamespace(b []byte) (Namespace, error) {
	var ns Namespace
	var haveID bool
	it := nlmsg.Attrs(b)
	for it.Next() {
		var err error
		switch it.Type {
		case attrNsID:
			ns.ID, err = it.U16()
			haveID = true
		case attrNsData:
			var v uint32
			if v, err = it.U32(); err == nil && ioam6.U32Available(v) { // the kernel stores all ones for "not given"
				ns.Data = &v
			}
		case attrNsDataWide:
			var v uint64
			if v, err = it.U64(); err == nil && ioam6.U64Available(v) {
				ns.DataWide = &v
			}
		case attrScID:
			var v uint32
			if v, err = it.U32(); err == nil {
				ns.SchemaID = &v
			}
		}
		if err != nil {
			return Namespace{}, err
		}
	}
	if it.Err() != nil {
		return Namespace{}, it.Err()
	}
	if !haveID {
		return Namespace{}, fmt.Errorf("%w: namespace without IOAM6_ATTR_NS_ID", errMalformed)
	}
	return ns, nil
}

func decodeSchema(b []byte) (Schema, error) {
	var sc Schema
	var haveID bool
	it := nlmsg.Attrs(b)
	for it.Next() {
		var err error
		switch it.Type {
		case attrScID:
			sc.ID, err = it.U32()
			haveID = true
		case attrScData:
			sc.Data = append([]byte(nil), it.Val...)
		case attrNsID:
			var v uint16
			if v, err = it.U16(); err == nil {
				sc.NamespaceID = &v
			}
		}
		if err != nil {
			return Schema{}, err
		}
	}
	if it.Err() != nil {
		return Schema{}, it.Err()
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
