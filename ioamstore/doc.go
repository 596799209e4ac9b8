// Package ioamstore is the badger persistence of clt-storage: OTLP spans stored
// losslessly, IOAM records stored content-addressed, the indexes that answer
// Jaeger's storage v2 queries, TTL and value-log garbage collection. The
// design, at more length, is docs/storage.md.
//
// It implements the query semantics of Jaeger's storage v2 TraceReader
// (jaeger-idl v0.6.0 proto/storage/v2/trace_storage.proto, reference behaviour
// in Jaeger's memory store internal/storage/v2/memory/tenant.go): a trace
// matches a [Query] when ONE of its spans satisfies every predicate. It does
// not import gRPC, the plugin or the generated API: IOAM records arrive as
// opaque marshaled bytes plus the fields needed to index them.
//
// # Why not Jaeger's badger layout
//
// Jaeger's badger store (ADR 005) writes one key per span plus one index key per
// span per tag (about 21 keys per tracegen span) and answers a service search
// by collecting every index key of the service in the time range before
// applying the limit (docs/benchmarks.md compares the two). This package instead
// stores the spans of one trace from one Export batch together, and indexes per
// (service, trace, batch) with a Bloom filter of the searchable features, so a
// search walks the newest index entries first and stops after SearchDepth
// traces.
//
// # Key layout
//
// All integers are big-endian so that byte order is sort order. Every
// variable-length part is either length-prefixed or hashed (xxhash64 of the
// exact bytes; a hash collision can only add candidates, never lose one,
// because candidates are verified against the stored spans). "inv(t)" is
// math.MaxUint64 - t (t in Unix nanoseconds), so that ascending iteration is
// newest first. Values are prefixed by one format byte (currently 1) so the
// encoding can change without a migration.
//
// Span chunk: the spans of one trace from one WriteSpans call, at most
// maxSpansPerChunk spans per part. seq is the xxhash64 of the trace's chunk
// payloads in that call: different content gives different keys, so duplicate
// span IDs (with another start time, say) are kept, while a retried Export
// rewrites the same keys instead of duplicating its spans.
//
//	[0x01][traceID:16][seq:8][part:2]
//	value: [fmt=1][minStart:8][maxEnd:8][spanCount:4][TracesData proto]
//
// The proto is an OTLP TracesData holding only this trace's spans, each span
// under its original Resource and InstrumentationScope (with schema URLs), so
// GetTrace returns exactly what was written (proto.Equal, unknown fields kept).
//
// Service index: one entry per (service, trace, batch, minute of span start),
// where maxStart is the latest start of the entry's spans. Spans are grouped
// by start / indexSpread (1 min), so an entry never covers more than
// indexSpread and a scan for start <= T seeks to inv(T + indexSpread) without
// missing an entry.
//
//	[0x10][xxhash(service):8][inv(maxStart):8][traceID:16][seq:8]
//	value: [fmt=1][maxStart-minStart:uvarint][minDuration:uvarint][maxDuration:uvarint][bloom]
//
// The Bloom filter holds the features of that service's spans in the chunk:
// "o" + span name, and "a" + key + 0x00 + string form of the value for every
// attribute of the span, its scope, its resource and its events, plus
// error=true for spans with status ERROR (16 bits per feature, 11 probes by
// double hashing of the feature's xxhash64, about 0.05 % false positives). It
// only filters candidates; every candidate trace is loaded and checked exactly.
//
// # Searching
//
// FindTraceIDs walks the service's index entries newest first, prunes each
// entry by its time range, duration range and Bloom filter, loads the
// remaining candidate traces (all their chunks) and checks every predicate on
// each span exactly; it stops after SearchDepth matching traces. Searches with
// ioam.node_id or ioam.namespace_id walk the IOAM record index instead (newest
// record first), so records written before or after their spans both work.
// Results are ordered by discovery, which is newest first by the latest span
// start of the entry (record received time for ioam.* searches). FindTraces
// runs the same search and hands over each match with the spans decoded to
// verify it and its records, so a search result is read from disk once.
//
// Service and operation names (rewritten every min(SpanTTL/4, 1h) while spans
// arrive, with a TTL of SpanTTL plus that interval, so they expire at most
// that long after the service's last span):
//
//	[0x20][len(service):2][service]
//	[0x21][len(service):2][service][kind:1][operation]      (kind: OTLP SpanKind)
//
// IOAM records, content-addressed: the same Data for the same (trace, span)
// maps to the same key and is stored once.
//
//	[0x40][traceID:16][spanID:8][sha256(data)[:16]]
//	value: [fmt=2][namespaceID:2][received:8][n:2][nodeID:8]*n[data]
//
// (Format 1, read but no longer written, had 4-byte node ids.) Node ids are
// short (24-bit) and wide (56-bit) ids alike.
//
// IOAM record index, one entry per (record, distinct node id) and one per
// record for its namespace; it answers ioam.node_id / ioam.namespace_id
// searches whether records arrived before or after their spans. A node id
// above 32 bits (a wide id) has its own kind with an 8-byte value, so every
// value has exactly one prefix.
//
//	[0x41][kind:1][value:4][inv(received):8][traceID:16][spanID:8]   (kind 1 = node id ≤ 32 bits, 2 = namespace id)
//	[0x41][3][value:8][inv(received):8][traceID:16][spanID:8]        (kind 3 = node id > 32 bits)
//
// Node registry: the IOAM nodes records mention, with the name learned for
// each and whether it received packets (the plugin's routers as services),
// rewritten by the plugin when a name changes and before the TTL:
//
//	[0x50][wide:1][id:8]   value: [fmt=2][flags:1][name]   (flags bit 0: receiver)
//
// Spans, span indexes and names expire after SpanTTL; records, their index
// and the node registry after RecordTTL (badger entry TTL). A background goroutine runs
// RunValueLogGC every GCInterval so expired values actually free disk, and
// an idle store (no write for a ReclaimInterval) rewrites its LSM tree so
// expired keys leave the disk without a compaction (Store.Reclaim). Memory:
// every badger cache and buffer is sized by Config, capped by MemoryLimitMiB
// (docs/storage.md §8).
package ioamstore
