package plugin

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/ioamstore"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// Field limits of RFC 9197 §4.4 (and RFC 9486 for the carriage).
const (
	maxNamespaceID   = 1<<16 - 1
	maxNodeID        = 1<<24 - 1
	maxWideNodeID    = 1<<56 - 1
	maxIfID          = 1<<16 - 1
	maxHopLimit      = 1<<8 - 1
	maxSchemaID      = 1<<24 - 1
	maxSnapshotBytes = 255 * 4 // the snapshot length field counts 4-octet words
	// undefinedBits are trace-type bits 12-21, which RFC 9197 leaves
	// undefined: each adds one 4-octet field.
	undefinedBits   = 10
	maxAgentIDBytes = 256
	// maxNodeNameBytes bounds reporter_node_name and configured node names
	// (a DNS host name is at most 253 octets).
	maxNodeNameBytes = 255
	// maxErrorsReported bounds the field errors named in one InvalidArgument.
	maxErrorsReported = 10
)

// fieldError is one invalid field of a record; reason is a short, bounded
// label for the rejected-records metric.
type fieldError struct {
	path   string
	reason string
	msg    string
}

func (e fieldError) Error() string { return e.path + ": " + e.msg }

// validateRecord checks one record against RFC 9197 field widths and the
// configured limits. prefix is its path in the request ("records[3]").
func validateRecord(prefix string, r *collectorv1.IOAMRecord, maxHops int) []fieldError {
	var errs []fieldError
	bad := func(field, reason, format string, args ...any) {
		errs = append(errs, fieldError{path: prefix + "." + field, reason: reason, msg: fmt.Sprintf(format, args...)})
	}
	switch n := len(r.GetTraceId()); {
	case n != 16:
		bad("trace_id", "trace_id", "length %d, want 16", n)
	case allZero(r.GetTraceId()):
		bad("trace_id", "trace_id", "all zero")
	}
	switch n := len(r.GetSpanId()); {
	case n != 8:
		bad("span_id", "span_id", "length %d, want 8", n)
	case allZero(r.GetSpanId()):
		bad("span_id", "span_id", "all zero")
	}
	if r.GetNamespaceId() > maxNamespaceID {
		bad("namespace_id", "namespace_id", "%d exceeds 16 bits", r.GetNamespaceId())
	}
	tt := r.GetTraceType()
	if tt > uint32(ioam6.TraceTypeMask) {
		bad("trace_type", "trace_type", "0x%x exceeds 24 bits", tt)
	}
	if r.GetReporterNodeId() > maxNodeID {
		bad("reporter_node_id", "node_id", "%d exceeds 24 bits", r.GetReporterNodeId())
	}
	if r.GetPackets() == 0 {
		bad("packets", "packets", "must be >= 1")
	}
	if f, l := r.GetFirstSeenUnixNano(), r.GetLastSeenUnixNano(); l < f {
		bad("last_seen_unix_nano", "time", "%d before first_seen_unix_nano %d", l, f)
	}
	if c := r.GetCarrier(); c != "" {
		if _, err := ioam6.ParseCarrier(c); err != nil {
			bad("carrier", "carrier", "%v", err)
		}
	}
	if err := checkNodeName(r.GetReporterNodeName()); err != nil {
		bad("reporter_node_name", "node_name", "%v", err)
	}
	if n := len(r.GetHops()); n > maxHops {
		bad("hops", "hop_count", "%d hops, limit %d", n, maxHops)
		return errs // do not walk an oversized list
	}
	for j, h := range r.GetHops() {
		hp := fmt.Sprintf("hops[%d].", j)
		f := h.GetFields()
		if f > uint32(ioam6.TraceTypeMask) {
			bad(hp+"fields", "trace_type", "0x%x exceeds 24 bits", f)
		} else if f&^tt != 0 {
			bad(hp+"fields", "trace_type", "0x%06x has bits not in trace_type 0x%06x", f, tt)
		}
		if h.GetHopLimit() > maxHopLimit {
			bad(hp+"hop_limit", "hop", "%d exceeds 8 bits", h.GetHopLimit())
		}
		if h.GetNodeId() > maxNodeID {
			bad(hp+"node_id", "node_id", "%d exceeds 24 bits", h.GetNodeId())
		}
		if h.GetIngressIf() > maxIfID {
			bad(hp+"ingress_if", "hop", "%d exceeds 16 bits", h.GetIngressIf())
		}
		if h.GetEgressIf() > maxIfID {
			bad(hp+"egress_if", "hop", "%d exceeds 16 bits", h.GetEgressIf())
		}
		if h.GetWideNodeId() > maxWideNodeID {
			bad(hp+"wide_node_id", "node_id", "%d exceeds 56 bits", h.GetWideNodeId())
		}
		if h.GetSnapshotSchemaId() > maxSchemaID {
			bad(hp+"snapshot_schema_id", "hop", "%d exceeds 24 bits", h.GetSnapshotSchemaId())
		}
		if n := len(h.GetSnapshotData()); n > maxSnapshotBytes || n%4 != 0 {
			bad(hp+"snapshot_data", "size", "length %d, want a multiple of 4 up to %d", n, maxSnapshotBytes)
		}
		if n := len(h.GetUndefinedFields()); n > undefinedBits {
			bad(hp+"undefined_fields", "size", "%d values, at most %d", n, undefinedBits)
		}
		if h.GetTransitDelayMin() > h.GetTransitDelayMax() {
			bad(hp+"transit_delay_min", "hop", "%d above transit_delay_max %d", h.GetTransitDelayMin(), h.GetTransitDelayMax())
		}
		if h.GetQueueDepthMin() > h.GetQueueDepthMax() {
			bad(hp+"queue_depth_min", "hop", "%d above queue_depth_max %d", h.GetQueueDepthMin(), h.GetQueueDepthMax())
		}
	}
	return errs
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checkNodeName accepts "" (no name) or a printable UTF-8 name of at most
// maxNodeNameBytes without leading or trailing space.
func checkNodeName(name string) error {
	switch {
	case name == "":
		return nil
	case len(name) > maxNodeNameBytes:
		return fmt.Errorf("length %d, limit %d", len(name), maxNodeNameBytes)
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%q has leading or trailing space", name)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%q has a non-printable character", name)
	}
	return nil
}

// ErrInvalidRecords is matched (errors.Is) by the error of a batch with at
// least one invalid record; that error is also an InvalidArgument gRPC status
// naming the fields.
var ErrInvalidRecords = errors.New("invalid records")

// batchInvalidError is a batch's field errors: it unwraps to
// ErrInvalidRecords and converts to an InvalidArgument status.
type batchInvalidError struct{ msg string }

func (e *batchInvalidError) Error() string { return ErrInvalidRecords.Error() + ": " + e.msg }
func (e *batchInvalidError) Unwrap() error { return ErrInvalidRecords }

// GRPCStatus makes grpc answer InvalidArgument with the message.
func (e *batchInvalidError) GRPCStatus() *status.Status {
	return status.New(codes.InvalidArgument, e.Error())
}

// batchError joins the first field errors into one error.
func batchError(errs []fieldError) error {
	var b strings.Builder
	for i, e := range errs {
		if i == maxErrorsReported {
			fmt.Fprintf(&b, "; and %d more", len(errs)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return &batchInvalidError{msg: b.String()}
}

// marshalOpts makes the stored bytes a pure function of the record, which is
// what makes the store's content addressing (and so retries) idempotent.
var marshalOpts = proto.MarshalOptions{Deterministic: true}

// toStoreRecord converts a validated record. Node ids for the search index
// are every hop's short and wide node id (all 56 bits) plus the reporter's;
// the kernel's "not available" ids name no node and are left out.
func toStoreRecord(r *collectorv1.IOAMRecord, received time.Time) (ioamstore.Record, error) {
	data, err := marshalOpts.Marshal(r)
	if err != nil {
		return ioamstore.Record{}, fmt.Errorf("marshal record: %w", err)
	}
	rec := ioamstore.Record{
		NamespaceID: uint16(r.GetNamespaceId()),
		Received:    received,
		Data:        data,
	}
	copy(rec.TraceID[:], r.GetTraceId())
	copy(rec.SpanID[:], r.GetSpanId())
	var ids []uint64
	if ioam6.NodeIDAvailable(r.GetReporterNodeId()) {
		ids = append(ids, uint64(r.GetReporterNodeId()))
	}
	for _, h := range r.GetHops() {
		f := ioam6.TraceType(h.GetFields())
		if f == 0 {
			f = ioam6.TraceType(r.GetTraceType())
		}
		if f&ioam6.BitHopLimitNodeID != 0 && ioam6.NodeIDAvailable(h.GetNodeId()) {
			ids = append(ids, uint64(h.GetNodeId()))
		}
		if f&ioam6.BitWideHopLimitNodeID != 0 && ioam6.WideNodeIDAvailable(h.GetWideNodeId()) {
			ids = append(ids, h.GetWideNodeId())
		}
	}
	slices.Sort(ids)
	rec.NodeIDs = slices.Compact(ids)
	return rec, nil
}
