package clt

import "go.opentelemetry.io/otel/trace"

// AppendCmsg exposes appendCmsg.
func (inj *Injector) AppendCmsg(dst []byte, sc trace.SpanContext) ([]byte, error) {
	return inj.appendCmsg(dst, sc)
}
