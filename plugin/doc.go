// Package plugin is clt-storage, the storage server of Cross Layer Telemetry:
// it stores application spans and IPv6 IOAM hop records (RFC 9197 trace data
// carried as in RFC 9486) side by side in badger (package ioamstore) and
// serves them to a stock Jaeger v2 so that the Jaeger UI shows, on each span,
// the network path its packets took.
//
// # Servers
//
// One process, three listeners (defaults; all configurable):
//
//   - :17271, gRPC for Jaeger's `grpc` storage backend: jaeger.storage.v2
//     TraceReader (GetTraces, GetServices, GetOperations, FindTraces,
//     FindTraceIDs) and DependencyReader (GetDependencies) from jaeger-idl
//     v0.6.0 (api/storagev2), OTLP
//     opentelemetry.proto.collector.trace.v1.TraceService/Export for writes, and
//     grpc.health.v1. This is Jaeger's "remote storage" API. The same port
//     serves jaeger.storage.v1 (api/storagev1) for Jaeger v1 and v2.0–v2.5,
//     on top of the v2 reader and writer (v1.go, v1convert.go, v1archive.go);
//     started by a Jaeger v1.12–v1.57 host, clt-storage serves it as that
//     host's hashicorp go-plugin sidecar instead (sidecar.go).
//   - :7123, gRPC for agents: clt.collector.v1.CollectorService/Report
//     (api/collector/v1), plus, with collector.compat, the APIs of the original
//     CLT agents: ioam_trace.IOAMService/Report (unary, the research demo) and
//     ioam_api.IOAMService/Report (client stream, ioam-api CLT branch), both
//     mapped to the same records (api/compat).
//   - :17270, HTTP admin: GET /metrics (Prometheus, private registry), GET
//     /healthz, /debug/pprof/ when admin.pprof is set, and POST /purge (deletes
//     everything) only when admin.purge is set.
//
// Every port listens on loopback by default and takes a tls block (package
// internal/tlsconf: certificates reloaded on change and on SIGHUP, mutual
// TLS) and an auth block (bearer tokens and client-certificate common names
// granting writer, reader or admin; security.go maps methods to roles). Writes
// pass an in-flight byte budget answered ResourceExhausted + RetryInfo.
//
// # Jaeger configuration
//
// Point Jaeger v2 (v2.13.0 tested; newer v2.x fall back gracefully because
// unknown RPCs answer UNIMPLEMENTED) at the storage port:
//
//	extensions:
//	  jaeger_query:
//	    storage:
//	      traces: clt
//	  jaeger_storage:
//	    backends:
//	      clt:
//	        grpc:
//	          endpoint: 127.0.0.1:17271
//	          tls:
//	            insecure: true
//	exporters:
//	  jaeger_storage_exporter:
//	    trace_storage: clt
//
// # Query semantics
//
// As Jaeger's memory backend (the reference of its conformance suite): a trace
// matches FindTraces when one span satisfies every predicate (service,
// operation, start time range, duration range, each attribute found on the
// span, its scope, its resource or one of its events, compared by string form:
// "123" matches int 123). The key error=true means status ERROR (or an
// error=true attribute), error=false means not ERROR. ioam.node_id=N and
// ioam.namespace_id=N match traces with a span whose IOAM records include node
// N / namespace N, whether the records arrived before or after the span; N is
// a short or wide (56-bit) id, as shown (wide ids 0x hex) or decimal.
// Routers are services too (routers.go): the labels of the nodes records
// mention (NodeNames: configured names, names agents report, else
// "node <id>"), with the network span names as operations; a search for one
// finds the spans whose records include it, and GetDependencies draws calls
// with records through them.
// Results are newest first, at most search_depth traces (0 means
// storage.default_search_depth; larger than storage.max_search_depth is
// clamped). Streams carry at most storage.max_spans_per_chunk spans per
// TracesData, never an empty chunk, never two traces in one chunk; an unknown
// trace is an empty stream, not an error.
//
// # Enrichment
//
// On every read (GetTraces and FindTraces) the spans are joined with the IOAM
// records stored for their (trace ID, span ID), whenever those arrived. A span
// with records gets the attributes and events of the UI naming contract
// (docs/contracts.md): ioam.namespace_id, ioam.trace_type, ioam.hop_count,
// ioam.path ("1 > 2 > 3"), ioam.packets, ioam.reporters,
// ioam.transit_delay_max_ns, ioam.queue_depth_max_bytes and the flags
// ioam.overflow, ioam.path_changed, ioam.unconfirmed; one event per hop of the
// canonical path (the longest path reported) named by its one-line summary
// ("hop 2 · aramis (node 3) · if 21 → 22 · +50.213 ms"); one event per
// warning and @jaeger@warnings, which Jaeger turns into span warnings. Field
// semantics (what is "not available", timestamps, id formats) come from
// kernel/ioam6. With enrich.network_spans (default) the span also gets
// synthetic child spans (ioam.synthetic=true): one per network link, whose
// service is the node that received the packet, and one ERROR span per
// warning, so that the stock UI flags it in the timeline and the search
// results. Every ioam.* key can be searched: FindTraces evaluates the
// enrichment of each candidate (ioamstore.Query.Derived). Enrichment is
// computed at read time and never written back, so the stored spans stay
// exactly what Jaeger wrote; spans without records are returned unchanged.
//
// # Collector semantics
//
// Report validates the whole batch first (field widths of RFC 9197 §4.4:
// 16-bit namespace, 24-bit trace type and node ids, 16-bit interface ids,
// hop fields a subset of the trace type, collector.max_hops, snapshot sizes)
// and fails it with InvalidArgument naming every bad field, e.g.
// "records[3].trace_id: length 15, want 16"; nothing of an invalid batch is
// stored. A valid batch is acknowledged once the store has written it. Records
// are content-addressed (deterministic protobuf bytes), so an agent retrying a
// batch is answered with duplicates instead of storing twice. The compat APIs
// (compat.go) read what the original agents really send, drop a hop field
// that cannot be read rather than the report, and write a never-closing
// ioam_api stream within collector.compat_flush_interval; docs/contracts.md
// ("Collector and compat rules") states every rule.
//
// # Metrics
//
// clt_storage_spans_written_total, clt_storage_export_errors_total,
// clt_storage_records_accepted_total, clt_storage_records_duplicate_total,
// clt_storage_records_rejected_total{reason},
// clt_storage_query_duration_seconds{rpc},
// clt_storage_query_errors_total{rpc}, clt_storage_records_corrupt_total,
// clt_storage_badger_lsm_bytes,
// clt_storage_badger_vlog_bytes, clt_storage_gc_runs_total,
// clt_storage_gc_rewrites_total, clt_storage_gc_errors_total,
// clt_storage_compat_stream_flushes_total{trigger},
// clt_storage_compat_fields_dropped_total{api,field},
// clt_storage_nodes_dropped_total, clt_storage_nodes_write_errors_total, plus
// the Go and process collectors.
//
// # Lifecycle
//
// SIGINT/SIGTERM: health goes NOT_SERVING, listeners stop accepting,
// in-flight RPCs drain for up to shutdown_timeout (then are cancelled), and
// the store is flushed and closed.
package plugin
