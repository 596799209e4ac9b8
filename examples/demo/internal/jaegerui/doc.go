// Package jaegerui reads the JSON that Jaeger's query service serves to its UI
// (`GET /api/traces/{id}` and `GET /api/traces?service=…&tag=k:v`, the v1 "uimodel"
// shape of jaeger v1.76.0 / v2.13.0 `internal/uimodel/model.go`) and renders the
// spans of a trace with their IOAM hops as a plain-text table.
//
// The IOAM names it understands are the ones fixed by the UI naming contract in
// docs/contracts.md: span tags `ioam.hop_count`, `ioam.namespace_id`, `ioam.path`,
// … and one log (span event) named `ioam.hop` per hop with `ioam.node_id`,
// `ioam.ingress_if`, `ioam.egress_if`, `ioam.timestamp` and the other hop fields.
package jaegerui
