package ioam6nl

import (
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"

	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
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
	it := nlmsg.Attrs(b)
	for it.Next() {
		var err error
		switch it.Type {
		case ioam6.EventAttrTraceNamespace:
			ev.NamespaceID, err = it.U16()
			seen |= seenNS
		case ioam6.EventAttrTraceNodeLen:
			ev.NodeLen, err = it.U8()
			seen |= seenNodeLen
		case ioam6.EventAttrTraceType:
			ev.Type, err = it.U32()
			seen |= seenType
		case ioam6.EventAttrTraceData:
			ev.Data = it.Val
			seen |= seenData
		}
		if err != nil {
			return ioam6.EventAttrs{}, err
		}
	}
	if it.Err() != nil {
		return ioam6.EventAttrs{}, it.Err()
	}
	if seen != seenAll {
		return ioam6.EventAttrs{}, fmt.Errorf("%w: trace event lacks attributes (have mask %#x)", errMalformed, seen)
	}
	return ev, nil
}
