package clt

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Transport is an http.RoundTripper that puts the request's span on the
// connection carrying it. It speaks HTTP/1.1 only (see the package doc).
type Transport struct {
	base   *http.Transport
	inj    *Injector
	states sync.Pool // *rtState
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport wraps a clone of base (nil: http.DefaultTransport's settings).
// The clone has HTTP/2 disabled. When base has no DialContext (nor
// DialTLSContext), the clone dials with inj.Dialer so the SYN carries the
// option; a custom DialContext should use inj.Dialer itself.
func NewTransport(base *http.Transport, inj *Injector) *Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	tr := base.Clone()
	// One request per connection at a time: HTTP/2 would multiplex many
	// spans onto one socket option.
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	if tr.TLSClientConfig != nil {
		// Offer only http/1.1 in ALPN; a base config may list h2 first.
		tr.TLSClientConfig = tr.TLSClientConfig.Clone()
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	var p http.Protocols
	p.SetHTTP1(true)
	tr.Protocols = &p
	if tr.DialContext == nil && tr.DialTLSContext == nil {
		tr.DialContext = inj.Dialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	return &Transport{base: tr, inj: inj}
}

// Base returns the wrapped *http.Transport (configure idle limits there).
func (t *Transport) Base() *http.Transport { return t.base }

// rtState is the per-request state of RoundTrip, pooled: GotConn is bound
// once, so a request costs no closure or ClientTrace allocation.
type rtState struct {
	t    *Transport
	sc   trace.SpanContext
	err  error
	ct   httptrace.ClientTrace
	hook func(httptrace.GotConnInfo) // st.gotConn, bound once
}

func (st *rtState) gotConn(info httptrace.GotConnInfo) {
	// Without a tagged span, SetConn clears the option if it was set: a
	// reused connection (or one dialed for another request's context) may
	// still carry an older span.
	if st.err = st.t.inj.SetConn(info.Conn, st.sc); st.err != nil {
		// Strict mode: abort before the request is written.
		_ = info.Conn.Close()
	}
}

// RoundTrip sets the option for the span in req's context (or clears a
// previous one when there is none) on the connection the request uses,
// before the request is written, then delegates to the base transport.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := t.states.Get().(*rtState)
	if st == nil {
		st = &rtState{t: t}
		st.hook = st.gotConn
	}
	// WithClientTrace composes by rewriting the hooks of the trace it is
	// given, so the pooled trace is reset for every request.
	st.ct = httptrace.ClientTrace{GotConn: st.hook}
	st.sc = trace.SpanContextFromContext(req.Context())
	// WithClientTrace composes with a trace already in the context (ours
	// runs first). GotConn is only called inside RoundTrip, so st can be
	// reused once it returns.
	resp, err := t.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), &st.ct)))
	setErr := st.err
	st.sc, st.err = trace.SpanContext{}, nil
	t.states.Put(st)
	if setErr != nil {
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, errors.Join(setErr, err)
	}
	return resp, err
}

// CloseIdleConnections closes the base transport's idle connections.
func (t *Transport) CloseIdleConnections() { t.base.CloseIdleConnections() }
