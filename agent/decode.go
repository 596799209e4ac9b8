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
	)
	if ev.Option != nil {
		// The namespace sits in the trace header: 2 (type, len) + 2 (reserved,
		// IOAM type) bytes into the option.
		if len(ev.Option) < 6 {
			return ReasonTruncated
		}
		ns = uint16(ev.Option[4])<<8 | uint16(ev.Option[5])
	}
	cc, ok := p.carrier[ns]
	if !ok {
		return ReasonUnconfiguredNamespace
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
	if ev.Option != nil {
		o.Overflow = tr.Overflow()
	} else {
		// The kernel emits an event only after handling the trace with a
		// known namespace on an enabled interface; no own entry means there
		// was no room (docs/wire-format.md §6).
		o.Overflow = !o.ReporterWrote
	}
	return ""
}

// isLocal tells whether n is this node's entry: by the short node id when the
// trace carries it, else by the wide id when known.
func (p *Pipeline) isLocal(n *HopData) bool {
	switch {
	case n.Fields&ioam6.BitHopLimitNodeID != 0:
		return n.NodeID == p.local
	case n.Fields&ioam6.BitWideHopLimitNodeID != 0 && p.localWide != nil:
		return n.WideNodeID == *p.localWide
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
