package ioam6nl

import (
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// parseEvent decodes the attributes of one IOAM6_EVENT_TRACE message (b is
// the genl payload after struct genlmsghdr). ev.Data references b.
func parseEvent(b []byte) (ioam6.EventAttrs, error) {
	var (
		ev   ioam6.EventAttrs
		seen uint8
	)
	const (
		seenNS = 1 << iota
		seenNodeLen
		seenType
		seenData
		seenAll = seenNS | seenNodeLen | seenType | seenData
	)
	it := attrIter{b: b}
	for it.next() {
		var err error
		switch it.typ {
		case ioam6.EventAttrTraceNamespace:
			ev.NamespaceID, err = it.u16()
			seen |= seenNS
		case ioam6.EventAttrTraceNodeLen:
			ev.NodeLen, err = it.u8()
			seen |= seenNodeLen
		case ioam6.EventAttrTraceType:
			ev.Type, err = it.u32()
			seen |= seenType
		case ioam6.EventAttrTraceData:
			ev.Data = it.val
			seen |= seenData
		}
		if err != nil {
			return ioam6.EventAttrs{}, err
		}
	}
	if it.err != nil {
		return ioam6.EventAttrs{}, it.err
	}
	if seen != seenAll {
		return ioam6.EventAttrs{}, fmt.Errorf("%w: trace event lacks attributes (have mask %#x)", errMalformed, seen)
	}
	return ev, nil
}
