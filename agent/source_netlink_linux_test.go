package agent

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

func nla(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nlmsg(famID uint16, cmd uint8, attrs ...[]byte) []byte {
	b := make([]byte, nlmsgHdrLen+genlHdrLen)
	binary.NativeEndian.PutUint16(b[4:], famID)
	b[nlmsgHdrLen] = cmd
	b[nlmsgHdrLen+1] = ioam6.GenlFamilyVer
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}

func TestNetlinkParseEvents(t *testing.T) {
	var bad []string
	s := &netlinkSource{famID: 30, bad: func(r string) { bad = append(bad, r) }}
	ne := binary.NativeEndian
	ns, typ := make([]byte, 2), make([]byte, 4)
	ne.PutUint16(ns, 123)
	ne.PutUint32(typ, uint32(typeOSS)<<8)
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	good := nlmsg(30, ioam6.EventTrace,
		nla(ioam6.EventAttrTraceNamespace, ns), nla(ioam6.EventAttrTraceNodeLen, []byte{4}),
		nla(ioam6.EventAttrTraceType, typ), nla(ioam6.EventAttrTraceData, data))
	missingData := nlmsg(30, ioam6.EventTrace, nla(ioam6.EventAttrTraceNamespace, ns))
	otherFamily := nlmsg(31, ioam6.EventTrace)
	otherCmd := nlmsg(30, 2)
	shortNS := nlmsg(30, ioam6.EventTrace, nla(ioam6.EventAttrTraceNamespace, []byte{1}))

	dgram := append(append(append(append(append([]byte(nil), good...), missingData...), otherFamily...), otherCmd...), shortNS...)
	evs := s.parse(dgram, nil, 42)
	require.Len(t, evs, 1)
	assert.Equal(t, Event{NamespaceID: 123, NodeLen: 4, TraceType: uint32(typeOSS), Data: data, SeenUnixNano: 42}, evs[0])
	assert.Equal(t, []string{ReasonTruncated, ReasonTruncated}, bad)

	bad = nil
	trunc := append([]byte(nil), good...)
	ne.PutUint32(trunc, uint32(len(good)+50))
	assert.Empty(t, s.parse(trunc, nil, 0))
	assert.Equal(t, []string{ReasonTruncated}, bad)
}
