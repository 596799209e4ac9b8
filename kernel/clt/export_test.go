package clt

import "go.opentelemetry.io/otel/trace"

// SetHopOptsFunc replaces the setsockopt call (fake setter for tests).
func (inj *Injector) SetHopOptsFunc(f func(fd int, hbh []byte) error) { inj.setHopOpts = f }

// AppendCmsg exposes appendCmsg.
func (inj *Injector) AppendCmsg(dst []byte, sc trace.SpanContext) ([]byte, error) {
	return inj.appendCmsg(dst, sc)
}
