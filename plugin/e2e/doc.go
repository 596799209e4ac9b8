// Package e2e holds the end-to-end test of clt-storage behind a real Jaeger
// v2 (build tag e2e): Jaeger's grpc storage backend pointed at an in-process
// clt-storage, everything on free 127.0.0.1 ports, checked through the JSON
// the Jaeger UI reads (/api/traces): the ioam.* tags, the ioam.hop logs, the
// IOAM warnings (Jaeger turns @jaeger@warnings into span warnings) and the
// ioam.node_id tag search. v1_test.go does the same over clt-storage's
// jaeger.storage.v1 services, plus the dependencies: Jaeger v1.76 and v1.57
// all-in-ones in remote mode, v1.57 with clt-storage as its go-plugin
// sidecar (embedded, with the archive, and forward; the plugin processes end
// with Jaeger), and Jaeger v2.0.0-rc2, whose grpc backend speaks v1.
// The upstream-mode checks run the same way, with clt-storage stateless in
// front of a second real Jaeger running the remote_storage extension over its
// memory and its badger backend; two replicas over one such tier survive an
// upstream outage without losing what they acknowledged.
//
// Run: make e2e, or go test -tags e2e ./plugin/e2e/ with JAEGER_BIN set
// (default <repo>/.cache/bin/jaeger, built by make jaeger) and JAEGER_V1_BIN
// (default <repo>/.cache/bin/jaeger-v1, built by make jaeger-v1), likewise
// JAEGER_V157_BIN (make jaeger-v157) and JAEGER_V162_BIN (make jaeger-v162).
package e2e
