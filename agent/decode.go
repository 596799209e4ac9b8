package agent

import (
	"errors"
	"strings"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// decode fills o from ev with the namespace's carrier; it returns the
// malformed reason, or "" on success. o.Hops reuses its backing array.
func (p *Pipeline) decode(ev *Event, o *Observation) string {
	var (
		tr  ioam6.Trace
		err error
		ns  = ev.NamespaceID
		typ = ioam6.TraceType(ev.TraceType)
	)
	if ev.Option != nil {
		// The trace header follows the option's type, length, reserved and
		// IOAM type octets (RFC 9486 §3).
		const optHdrLen = 4
		var h ioam6.TraceHeader
		if len(ev.Option) < optHdrLen || h.UnmarshalBinary(ev.Option[optHdrLen:]) != nil {
			return ReasonTruncated
		}
		ns, typ = h.NamespaceID, h.Type
	}
	cc, ok := p.carrier[ns]
	if !ok {
		return ReasonUnconfiguredNamespace
	}
	if cc.Carrier == ioam6.CarrierOSS && !typ.Has(ioam6.BitOpaqueStateSnapshot) {
		// The oss carrier's IDs are a snapshot (bit 22): a trace type without
		// it cannot carry them, whatever its data then looks like.
		return ReasonCarrier
	}
	if ev.Option != nil {
		tr, err = ioam6.DecodeTrace(ev.Option, cc)
	} else {
		tr, err = ioam6.DecodeEvent(ioam6.EventAttrs{
			NamespaceID: ev.NamespaceID, NodeLen: ev.NodeLen, Type: ev.TraceType << 8, Data: ev.Data,
		}, cc)
	}
	if err != nil {
		return reasonOf(err)
	}
	if !tr.HasIDs || tr.IDs.TraceID == ([16]byte{}) || tr.IDs.SpanID == ([8]byte{}) {
		// All-zero IDs are invalid (W3C trace context) and the collector
		// would reject the whole batch for them.
		return ReasonCarrier
	}
	o.TraceID, o.SpanID = tr.IDs.TraceID, tr.IDs.SpanID
	o.NamespaceID = tr.Header.NamespaceID
	o.TraceType = uint32(tr.Header.Type &^ ioam6.BitReserved)
	o.Carrier = cc.Carrier.String()
	o.SeenUnixNano = ev.SeenUnixNano
	hops := o.Hops[:0]
	it := tr.Nodes()
	for it.Next() {
		hops = append(hops, it.Node())
	}
	if err := it.Err(); err != nil {
		o.Hops = hops[:0]
		return reasonOf(err)
	}
	o.Hops = hops
	// The newest entry is the last of the path: this node's own when it wrote.
	o.ReporterWrote = len(hops) > 0 && p.isLocal(&hops[len(hops)-1])
	switch {
	case ev.Option != nil:
		o.Overflow = tr.Overflow()
	case len(hops) > 0 && !namesNode(hops[len(hops)-1].Fields):
		// Without a node id field nobody can tell whose the newest entry
		// is: neither this node's write nor an overflow is claimed.
		o.Overflow = false
	default:
		// The kernel emits an event only after handling the trace with a
		// known namespace on an enabled interface; no own entry means there
		// was no room (docs/wire-format.md §6).
		o.Overflow = !o.ReporterWrote
	}
	return ""
}

// namesNode reports whether entries of this type carry a node id (bit 0 or 8).
func namesNode(f ioam6.TraceType) bool {
	return f&(ioam6.BitHopLimitNodeID|ioam6.BitWideHopLimitNodeID) != 0
}

// isLocal tells whether n is this node's entry: by the short node id when the
// trace carries it, else by the wide one. A trace type with neither cannot
// name its writer: such an entry is never taken for this node's.
func (p *Pipeline) isLocal(n *HopData) bool {
	switch {
	case n.Fields&ioam6.BitHopLimitNodeID != 0:
		return n.NodeID == p.local.ID
	case n.Fields&ioam6.BitWideHopLimitNodeID != 0:
		return n.WideNodeID == p.local.WideID
	}
	return false
}

// reasonOf maps a kernel/ioam6 decode error to a malformed reason.
func reasonOf(err error) string {
	var de *ioam6.DecodeError
	field := ""
	if errors.As(err, &de) {
		field = de.Field
	}
	switch {
	case field == "node length":
		return ReasonNodeLen
	case strings.Contains(field, "snapshot"):
		return ReasonSnapshot
	case strings.Contains(field, "ids"):
		return ReasonCarrier
	case errors.Is(err, ioam6.ErrUnsupported), strings.Contains(field, "trace type"):
		return ReasonTraceType
	case errors.Is(err, ioam6.ErrTruncated):
		return ReasonTruncated
	case errors.Is(err, ioam6.ErrMalformed), errors.Is(err, ioam6.ErrNotFound):
		return ReasonPacket
	}
	return ReasonOther
}
