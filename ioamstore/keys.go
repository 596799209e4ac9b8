package ioamstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Key prefixes (one byte per record type, see the package doc).
const (
	prefixChunk       byte = 0x01
	prefixSvcIndex    byte = 0x10
	prefixService     byte = 0x20
	prefixOperation   byte = 0x21
	prefixRecord      byte = 0x40
	prefixRecordIndex byte = 0x41
)

// valueFormat is the first byte of every value this package writes.
const valueFormat byte = 1

// Record index kinds. Node ids that fit 32 bits (every short id, small wide
// ids) use kind 1 with a 4-byte value, larger wide ids kind 3 with an 8-byte
// value: one value has exactly one index prefix.
const (
	recIndexNode      byte = 1
	recIndexNamespace byte = 2
	recIndexWideNode  byte = 3
)

// recordValueWide is the record value format with 8-byte node ids (format 1
// had 4-byte ids; both are read).
const recordValueWide byte = 2

const (
	traceIDLen = 16
	spanIDLen  = 8
	recHashLen = 16

	chunkKeyLen       = 1 + traceIDLen + 8 + 2
	svcIndexKeyLen    = 1 + 8 + 8 + traceIDLen + 8
	recordKeyLen      = 1 + traceIDLen + spanIDLen + recHashLen
	recordIndexKeyLen = 1 + 1 + 4 + 8 + traceIDLen + spanIDLen
	// wideIndexExtra is the longer value of a kind-3 index key.
	wideIndexExtra = 4

	// maxNameLen bounds service and operation names kept in the name
	// registry (keys carry a 2-byte length); longer names are still stored
	// and searchable, only not listed.
	maxNameLen = 16 << 10
)

var errShortKey = errors.New("key too short")

// inv maps a time so that ascending key order is newest first.
func inv(t uint64) uint64 { return math.MaxUint64 - t }

// chunkKey addresses one part of the spans of one trace from one WriteSpans call.
type chunkKey struct {
	TraceID  [16]byte
	BatchSeq uint64
	Part     uint16
}

func (k chunkKey) append(b []byte) []byte {
	b = append(b, prefixChunk)
	b = append(b, k.TraceID[:]...)
	b = binary.BigEndian.AppendUint64(b, k.BatchSeq)
	return binary.BigEndian.AppendUint16(b, k.Part)
}

func chunkPrefix(traceID [16]byte) []byte {
	return append([]byte{prefixChunk}, traceID[:]...)
}

// svcIndexKey is one service index entry (service, trace, batch).
type svcIndexKey struct {
	ServiceHash uint64
	MaxStart    uint64 // Unix ns; stored inverted
	TraceID     [16]byte
	BatchSeq    uint64
}

func (k svcIndexKey) append(b []byte) []byte {
	b = append(b, prefixSvcIndex)
	b = binary.BigEndian.AppendUint64(b, k.ServiceHash)
	b = binary.BigEndian.AppendUint64(b, inv(k.MaxStart))
	b = append(b, k.TraceID[:]...)
	return binary.BigEndian.AppendUint64(b, k.BatchSeq)
}

func decodeSvcIndexKey(b []byte) (svcIndexKey, error) {
	var k svcIndexKey
	if len(b) < svcIndexKeyLen || b[0] != prefixSvcIndex {
		return k, fmt.Errorf("service index key: %w (%d bytes)", errShortKey, len(b))
	}
	k.ServiceHash = binary.BigEndian.Uint64(b[1:])
	k.MaxStart = inv(binary.BigEndian.Uint64(b[9:]))
	copy(k.TraceID[:], b[17:17+traceIDLen])
	k.BatchSeq = binary.BigEndian.Uint64(b[17+traceIDLen:])
	return k, nil
}

// svcIndexSeek is where a newest-first scan of a service for spans starting
// at or before maxStart begins.
func svcIndexSeek(serviceHash, maxStart uint64) []byte {
	b := make([]byte, 0, 17)
	b = append(b, prefixSvcIndex)
	b = binary.BigEndian.AppendUint64(b, serviceHash)
	return binary.BigEndian.AppendUint64(b, inv(maxStart))
}

func svcIndexPrefix(serviceHash uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixSvcIndex}, serviceHash)
}

// svcIndexValue is the summary of one service's spans in one chunk.
type svcIndexValue struct {
	Spread      uint64 // MaxStart - earliest start, ns
	MinDuration uint64 // ns
	MaxDuration uint64 // ns
	Bloom       []byte // see bloom.go; aliases the decoded buffer
}

func (v svcIndexValue) append(b []byte) []byte {
	b = append(b, valueFormat)
	b = binary.AppendUvarint(b, v.Spread)
	b = binary.AppendUvarint(b, v.MinDuration)
	b = binary.AppendUvarint(b, v.MaxDuration)
	return append(b, v.Bloom...)
}

func decodeSvcIndexValue(b []byte) (svcIndexValue, error) {
	var v svcIndexValue
	if len(b) < 1 || b[0] != valueFormat {
		return v, errors.New("service index value: unknown format")
	}
	b = b[1:]
	for _, p := range []*uint64{&v.Spread, &v.MinDuration, &v.MaxDuration} {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return v, errors.New("service index value: bad varint")
		}
		*p = x
		b = b[n:]
	}
	v.Bloom = b
	return v, nil
}

// chunkHeader precedes the TracesData proto in a chunk value.
type chunkHeader struct {
	MinStart, MaxEnd uint64
	Spans            uint32
}

const chunkHeaderLen = 1 + 8 + 8 + 4

func (h chunkHeader) append(b []byte) []byte {
	b = append(b, valueFormat)
	b = binary.BigEndian.AppendUint64(b, h.MinStart)
	b = binary.BigEndian.AppendUint64(b, h.MaxEnd)
	return binary.BigEndian.AppendUint32(b, h.Spans)
}

func decodeChunkHeader(b []byte) (chunkHeader, []byte, error) {
	var h chunkHeader
	if len(b) < chunkHeaderLen {
		return h, nil, fmt.Errorf("chunk value: %w (%d bytes)", errShortKey, len(b))
	}
	if b[0] != valueFormat {
		return h, nil, fmt.Errorf("chunk value: unknown format %#02x", b[0])
	}
	h.MinStart = binary.BigEndian.Uint64(b[1:])
	h.MaxEnd = binary.BigEndian.Uint64(b[9:])
	h.Spans = binary.BigEndian.Uint32(b[17:])
	return h, b[chunkHeaderLen:], nil
}

// Name registry keys. The writer reuses one buffer per batch (nameCache.due),
// hence the append forms.

// appendServiceNameKey appends [0x20][len:2][service].
func appendServiceNameKey(b []byte, service string) []byte {
	b = append(b, prefixService)
	b = binary.BigEndian.AppendUint16(b, uint16(len(service)))
	return append(b, service...)
}

func decodeServiceNameKey(b []byte) (string, error) {
	if len(b) < 3 || b[0] != prefixService {
		return "", fmt.Errorf("service key: %w", errShortKey)
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	if len(b) != 3+n {
		return "", fmt.Errorf("service key: length %d does not match %d bytes", n, len(b)-3)
	}
	return string(b[3:]), nil
}

func operationPrefix(service string) []byte {
	return appendOperationPrefix(make([]byte, 0, 3+len(service)), service)
}

// appendOperationPrefix appends [0x21][len:2][service].
func appendOperationPrefix(b []byte, service string) []byte {
	b = append(b, prefixOperation)
	b = binary.BigEndian.AppendUint16(b, uint16(len(service)))
	return append(b, service...)
}

// appendOperationKey appends the operation prefix, [kind:1] and [op].
func appendOperationKey(b []byte, service string, kind byte, op string) []byte {
	b = appendOperationPrefix(b, service)
	b = append(b, kind)
	return append(b, op...)
}

func decodeOperationKey(b []byte) (service string, kind byte, op string, err error) {
	if len(b) < 3 || b[0] != prefixOperation {
		return "", 0, "", fmt.Errorf("operation key: %w", errShortKey)
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	if len(b) < 3+n+1 {
		return "", 0, "", fmt.Errorf("operation key: %w", errShortKey)
	}
	return string(b[3 : 3+n]), b[3+n], string(b[4+n:]), nil
}

// recordKey addresses one IOAM record by content.
type recordKey struct {
	TraceID [16]byte
	SpanID  [8]byte
	Hash    [recHashLen]byte
}

func (k recordKey) append(b []byte) []byte {
	b = append(b, prefixRecord)
	b = append(b, k.TraceID[:]...)
	b = append(b, k.SpanID[:]...)
	return append(b, k.Hash[:]...)
}

func decodeRecordKey(b []byte) (recordKey, error) {
	var k recordKey
	if len(b) < recordKeyLen || b[0] != prefixRecord {
		return k, fmt.Errorf("record key: %w (%d bytes)", errShortKey, len(b))
	}
	copy(k.TraceID[:], b[1:])
	copy(k.SpanID[:], b[1+traceIDLen:])
	copy(k.Hash[:], b[1+traceIDLen+spanIDLen:])
	return k, nil
}

func recordPrefix(traceID [16]byte) []byte {
	return append([]byte{prefixRecord}, traceID[:]...)
}

// recordIndexKey is one ioam.node_id / ioam.namespace_id index entry.
type recordIndexKey struct {
	Kind     byte
	Value    uint64 // 4 bytes on disk, 8 for recIndexWideNode
	Received uint64 // Unix ns; stored inverted
	TraceID  [16]byte
	SpanID   [8]byte
}

// nodeIndexKind is the index kind of a node id value.
func nodeIndexKind(id uint64) byte {
	if id > math.MaxUint32 {
		return recIndexWideNode
	}
	return recIndexNode
}

func (k recordIndexKey) append(b []byte) []byte {
	b = recordIndexPrefixTo(b, k.Kind, k.Value)
	b = binary.BigEndian.AppendUint64(b, inv(k.Received))
	b = append(b, k.TraceID[:]...)
	return append(b, k.SpanID[:]...)
}

func decodeRecordIndexKey(b []byte) (recordIndexKey, error) {
	var k recordIndexKey
	if len(b) < recordIndexKeyLen || b[0] != prefixRecordIndex {
		return k, fmt.Errorf("record index key: %w (%d bytes)", errShortKey, len(b))
	}
	k.Kind = b[1]
	if k.Kind == recIndexWideNode {
		if len(b) < recordIndexKeyLen+wideIndexExtra {
			return k, fmt.Errorf("record index key: %w (%d bytes)", errShortKey, len(b))
		}
		k.Value = binary.BigEndian.Uint64(b[2:])
		b = b[wideIndexExtra:]
	} else {
		k.Value = uint64(binary.BigEndian.Uint32(b[2:]))
	}
	k.Received = inv(binary.BigEndian.Uint64(b[6:]))
	copy(k.TraceID[:], b[14:])
	copy(k.SpanID[:], b[14+traceIDLen:])
	return k, nil
}

func recordIndexPrefix(kind byte, value uint64) []byte {
	return recordIndexPrefixTo(nil, kind, value)
}

func recordIndexPrefixTo(b []byte, kind byte, value uint64) []byte {
	b = append(b, prefixRecordIndex, kind)
	if kind == recIndexWideNode {
		return binary.BigEndian.AppendUint64(b, value)
	}
	return binary.BigEndian.AppendUint32(b, uint32(value))
}

// recordValue is the stored form of a Record (the key holds trace and span).
type recordValue struct {
	NamespaceID uint16
	Received    int64 // Unix ns, 0 = unknown
	NodeIDs     []uint64
	Data        []byte
}

const recordValueFixed = 1 + 2 + 8 + 2

// append writes format 2 (8-byte node ids).
func (v recordValue) append(b []byte) []byte {
	b = append(b, recordValueWide)
	b = binary.BigEndian.AppendUint16(b, v.NamespaceID)
	b = binary.BigEndian.AppendUint64(b, uint64(v.Received))
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.NodeIDs)))
	for _, n := range v.NodeIDs {
		b = binary.BigEndian.AppendUint64(b, n)
	}
	return append(b, v.Data...)
}

// decodeRecordValue decodes v (format 1 or 2); Data is copied only when
// withData is set.
func decodeRecordValue(b []byte, withData bool) (recordValue, error) {
	var v recordValue
	if len(b) < recordValueFixed {
		return v, fmt.Errorf("record value: %w (%d bytes)", errShortKey, len(b))
	}
	var idLen int
	switch b[0] {
	case valueFormat:
		idLen = 4
	case recordValueWide:
		idLen = 8
	default:
		return v, fmt.Errorf("record value: unknown format %#02x", b[0])
	}
	v.NamespaceID = binary.BigEndian.Uint16(b[1:])
	v.Received = int64(binary.BigEndian.Uint64(b[3:]))
	n := int(binary.BigEndian.Uint16(b[11:]))
	b = b[recordValueFixed:]
	if len(b) < idLen*n {
		return v, fmt.Errorf("record value: %d node ids need %d bytes, have %d", n, idLen*n, len(b))
	}
	v.NodeIDs = make([]uint64, n)
	for i := range n {
		if idLen == 8 {
			v.NodeIDs[i] = binary.BigEndian.Uint64(b[8*i:])
		} else {
			v.NodeIDs[i] = uint64(binary.BigEndian.Uint32(b[4*i:]))
		}
	}
	if withData {
		v.Data = append([]byte{}, b[idLen*n:]...)
	}
	return v, nil
}
