// Package e2e holds the end-to-end test of clt-storage behind a real Jaeger
// v2 (build tag e2e): Jaeger's grpc storage backend pointed at an in-process
// clt-storage, everything on free 127.0.0.1 ports, checked through the JSON
// the Jaeger UI reads (/api/traces): the ioam.* tags, the ioam.hop logs, the
// IOAM warnings (Jaeger turns @jaeger@warnings into span warnings) and the
// ioam.node_id tag search. The same checks run in upstream mode, with
// clt-storage stateless in front of a second real Jaeger running the
// remote_storage extension over its memory and its badger backend; and two
// replicas over one such tier survive an upstream outage without losing
// what they acknowledged.
//
// Run: make e2e, or go test -tags e2e ./plugin/e2e/ with JAEGER_BIN set
// (default <repo>/.cache/bin/jaeger, built by make jaeger).
package e2e
