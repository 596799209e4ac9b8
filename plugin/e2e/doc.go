// Package e2e holds the end-to-end test of clt-storage behind a real Jaeger
// v2 (build tag e2e): Jaeger's grpc storage backend pointed at an in-process
// clt-storage, everything on free 127.0.0.1 ports, checked through the JSON
// the Jaeger UI reads (/api/traces): the ioam.* tags, the ioam.hop logs, the
// IOAM warnings (Jaeger turns @jaeger@warnings into span warnings) and the
// ioam.node_id tag search. v1_test.go does the same through a real Jaeger
// v1.76 all-in-one (SPAN_STORAGE_TYPE=grpc --grpc-storage.server) over
// clt-storage's jaeger.storage.v1 services, plus Jaeger v1's dependencies.
//
// Run: make e2e, or go test -tags e2e ./plugin/e2e/ with JAEGER_BIN set
// (default <repo>/.cache/bin/jaeger, built by make jaeger) and JAEGER_V1_BIN
// (default <repo>/.cache/bin/jaeger-v1, built by make jaeger-v1).
package e2e
