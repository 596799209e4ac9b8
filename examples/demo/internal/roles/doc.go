// Package roles holds the three demo applications, modelled on the original CLT
// demo (docs/architecture.md §8): the client, athos (the API entrypoint and IOAM
// encapsulating host) and aramis (the server behind the router porthos).
//
//   - client: N calls of athos's `GET /api/request`, each in its own root span.
//   - athos: serves `/api/request` on :15123. Each API request makes two
//     sub-requests to aramis, `GET /check` then `GET /validate`, each in its own
//     client span, sent through the transport the caller supplies (the CLT
//     `http.RoundTripper`, which puts the IOAM Hop-by-Hop option carrying the
//     sub-request's span IDs on the connection) over one keep-alive connection.
//   - aramis: serves `/check` and `/validate` with a random bounded delay.
//
// Every role exports its spans with the OpenTelemetry SDK over OTLP/gRPC and
// propagates W3C trace context (traceparent) between the services.
package roles
