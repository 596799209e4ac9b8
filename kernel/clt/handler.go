package clt

import (
	"context"
	"net"
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

type connKey struct{}

// ConnContext fits http.Server.ConnContext: it makes each request's
// connection known to [Injector.Handler].
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Handler tags the return path: before next serves a request, the server
// span in the request's context (put there by the tracing middleware that
// wraps this one, e.g. otelhttp.NewHandler(inj.Handler(mux), ...)) is set
// on the request's connection, so the response's packets carry its IDs and
// return-path routers' hops join the server span. A request without a
// tagged span clears what an earlier request on the connection set. The
// server needs ConnContext; the SocketMap (an inserter on the server's host
// with the clients' prefixes and every port) or CAP_NET_RAW (the socket
// option), as for clients. HTTP/2 requests are left alone: their streams
// share the connection. Errors follow the failure policy: in strict mode
// the request is answered 503 and next is not called.
func (inj *Injector) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(net.Conn)
		if c == nil || r.ProtoMajor != 1 {
			if inj.tagged(trace.SpanContextFromContext(r.Context())) {
				if err := inj.skip(ReasonUnsupportedConn, errNoConn(r)); err != nil {
					http.Error(w, "clt: "+err.Error(), http.StatusServiceUnavailable)
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		if err := inj.SetConn(c, trace.SpanContextFromContext(r.Context())); err != nil {
			http.Error(w, "clt: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type noConnError string

func (e noConnError) Error() string { return string(e) }

func errNoConn(r *http.Request) error {
	if r.ProtoMajor != 1 {
		return noConnError("HTTP/2 streams share their connection: response not tagged")
	}
	return noConnError("no connection in the request context (set http.Server.ConnContext to clt.ConnContext)")
}
