package ioam6

// Numbers of the IOAM6 generic netlink event
// (include/uapi/linux/ioam6_genl.h; the event enums are newer than the 6.1
// distro headers). The family and its ioam6_events group (subscribing needs
// CAP_NET_ADMIN in the network namespace) are kernel/ioam6nl's.
const (
	EventTrace              = 1 // IOAM6_EVENT_TRACE (genl cmd of the event)
	EventAttrTraceNamespace = 1 // IOAM6_EVENT_ATTR_TRACE_NAMESPACE, u16 host order
	EventAttrTraceNodeLen   = 2 // IOAM6_EVENT_ATTR_TRACE_NODELEN, u8
	EventAttrTraceType      = 3 // IOAM6_EVENT_ATTR_TRACE_TYPE, u32 host order, trace type << 8
	EventAttrTraceData      = 4 // IOAM6_EVENT_ATTR_TRACE_DATA, binary
)

// MaxEventDataLen is the longest IOAM6_EVENT_ATTR_TRACE_DATA the kernel can
// send: the trace data of a 255-byte option (255 − 2 − 8). DecodeEvent
// rejects longer data, which also bounds the work per event.
const MaxEventDataLen = maxOptDataLen - 2 - TraceHeaderLen

// EventAttrs holds the attributes of one IOAM6_EVENT_TRACE message, as the
// netlink layer decoded them (integers in host order there; Data is the raw
// big-endian node data).
type EventAttrs struct {
	NamespaceID uint16 // IOAM6_EVENT_ATTR_TRACE_NAMESPACE
	NodeLen     uint8  // IOAM6_EVENT_ATTR_TRACE_NODELEN
	Type        uint32 // IOAM6_EVENT_ATTR_TRACE_TYPE, as sent: trace type << 8 (low byte reserved)
	// Data is IOAM6_EVENT_ATTR_TRACE_DATA: trace data from RemainingLen·4 to
	// the end of the option, after this node's write. That is every written
	// entry, newest first, then whatever follows the area (the tail IDs).
	Data []byte
}

// TraceType returns the 24-bit trace type carried in Type.
func (ev EventAttrs) TraceType() TraceType { return TraceType(ev.Type >> 8) }

// DecodeEvent decodes the DATA of an ioam6_events message with the
// namespace's carrier. The result has the same node iterator (path order)
// and IDs as DecodeTrace's; its header has RemainingLen 0 and no Overflow,
// which the kernel does not send. Trace.Newest is the reporting node's own
// entry when it wrote (the kernel also sends events on overflow, with the
// previous hop's data). CarrierCLTv1 events carry no IDs (the kernel sends
// only the area). Data longer than MaxEventDataLen is malformed. Error offsets are relative to Data; the result references
// Data and is the zero Trace on error.
func DecodeEvent(ev EventAttrs, cc CarrierConfig) (Trace, error) {
	var t Trace
	if err := t.decodeEvent(ev, cc); err != nil {
		return Trace{}, err
	}
	return t, nil
}

func (t *Trace) decodeEvent(ev EventAttrs, cc CarrierConfig) error {
	t.event = true
	t.Header = TraceHeader{NamespaceID: ev.NamespaceID, NodeLen: ev.NodeLen, Type: ev.TraceType()}
	if err := checkNodeLen(t.Header, 0); err != nil {
		return err
	}
	if len(ev.Data) > MaxEventDataLen {
		return decodeErr("event data", 0, ErrMalformed, "%d bytes, an ioam option carries at most %d", len(ev.Data), MaxEventDataLen)
	}
	nodes := ev.Data
	switch cc.Carrier {
	case CarrierOSS, CarrierCLTv1:
	case CarrierTail:
		if len(nodes) < IDLen {
			return decodeErr("tail ids", 0, ErrTruncated, "need %d bytes, have %d", IDLen, len(nodes))
		}
		nodes = nodes[:len(nodes)-IDLen]
		readIDs(&t.IDs, ev.Data[len(nodes):], false)
		t.HasIDs = true
	default:
		return specErr("carrier config: unknown carrier %d", uint8(cc.Carrier))
	}
	return t.setNodes(nodes, 0, cc)
}

// AppendEventData appends what the kernel would send as
// IOAM6_EVENT_ATTR_TRACE_DATA for t: the written entries newest first, then
// the tail IDs for CarrierTail. With EventAttrs (see Trace.EventAttrs) it
// lets tests build events from decoded or hand-made traces.
func (t *Trace) AppendEventData(dst []byte) []byte {
	dst = append(dst, t.nodes...)
	if t.cc.Carrier == CarrierTail && t.HasIDs {
		ids := t.IDs
		ids.Short = false
		dst = appendIDs(dst, ids, CarrierTail)
	}
	return dst
}

// EventAttrs returns the event attributes the kernel would send for t, with
// Data from AppendEventData (newly allocated).
func (t *Trace) EventAttrs() EventAttrs {
	return EventAttrs{
		NamespaceID: t.Header.NamespaceID,
		NodeLen:     t.Header.NodeLen,
		Type:        uint32(t.Header.Type&TraceTypeMask) << 8,
		Data:        t.AppendEventData(nil),
	}
}
