package agent

// decode fills o from ev; it returns the malformed reason, or "" on success.
func (p *Pipeline) decode(ev *Event, o *Observation) string {
	if _, ok := p.carrier[ev.NamespaceID]; !ok {
		return ReasonUnconfiguredNamespace
	}
	return ReasonOther // TODO: wire ioam6.DecodeEvent
}
