package clt

import (
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// AppendCmsg exposes appendCmsg.
func (inj *Injector) AppendCmsg(dst []byte, sc trace.SpanContext) ([]byte, error) {
	return inj.appendCmsg(dst, sc, unknownEgress, time.Now())
}

// LookupEgress runs the real netlink lookup.
func LookupEgress(fd int, dst netip.Addr) (id uint16, wide uint32, err error) {
	eg, err := lookupEgressNetlink(fd, dst)
	return eg.id, eg.wide, err
}
