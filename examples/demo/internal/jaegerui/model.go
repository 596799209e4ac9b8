package jaegerui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cross-layer-telemetry/clt/plugin"
)

// Response is the envelope of every `/api/...` answer of Jaeger's query service.
type Response struct {
	Data   []Trace `json:"data"`
	Total  int     `json:"total"`
	Limit  int     `json:"limit"`
	Offset int     `json:"offset"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

// Trace is one trace as the UI receives it.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Process is a span's process: its service name and the resource attributes.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Span is one span in the UI JSON; times are microseconds.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     int64       `json:"startTime"`
	Duration      int64       `json:"duration"`
	Tags          []KeyValue  `json:"tags"`
	Logs          []Log       `json:"logs"`
	ProcessID     string      `json:"processID"`
	Warnings      []string    `json:"warnings"`
}

// Reference links a span to its parent (CHILD_OF) or a predecessor (FOLLOWS_FROM).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Log is a span event: the field "event" holds the event name.
type Log struct {
	Timestamp int64      `json:"timestamp"`
	Fields    []KeyValue `json:"fields"`
}

// KeyValue is a typed tag or log field. Value keeps the JSON number text so
// int64 values survive exactly.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Decode parses a query-service answer. Numbers are kept as json.Number.
// An answer with a non-empty "errors" list is an error.
func Decode(b []byte) (*Response, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var r Response
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode jaeger response: %w", err)
	}
	if len(r.Errors) > 0 {
		errs := make([]error, 0, len(r.Errors))
		for _, e := range r.Errors {
			errs = append(errs, fmt.Errorf("jaeger error %d: %s", e.Code, e.Msg))
		}
		return &r, errors.Join(errs...)
	}
	return &r, nil
}

// String renders the value as the UI does.
func (kv KeyValue) String() string {
	switch v := kv.Value.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	default:
		return fmt.Sprint(v)
	}
}

// Int returns the value as an integer when it is one (int64 tags, or strings
// holding an integer).
func (kv KeyValue) Int() (int64, bool) {
	switch v := kv.Value.(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case float64:
		return int64(v), v == float64(int64(v))
	case string:
		n, err := strconv.ParseInt(v, 0, 64)
		return n, err == nil
	}
	return 0, false
}

func find(kvs []KeyValue, key string) (KeyValue, bool) {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv, true
		}
	}
	return KeyValue{}, false
}

// Tag returns the span tag with this key.
func (s *Span) Tag(key string) (KeyValue, bool) { return find(s.Tags, key) }

// TagInt returns an integer span tag.
func (s *Span) TagInt(key string) (int64, bool) {
	kv, ok := s.Tag(key)
	if !ok {
		return 0, false
	}
	return kv.Int()
}

// Synthetic reports whether clt-storage made the span (a network span,
// tag ioam.synthetic=true) rather than an application.
func (s *Span) Synthetic() bool {
	kv, ok := s.Tag(plugin.AttrSynthetic)
	return ok && kv.String() == "true"
}

// ParentID returns the span ID of the CHILD_OF reference, or "" for a root.
func (s *Span) ParentID() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Service returns the service name of the span's process.
func (t *Trace) Service(s *Span) string {
	if p, ok := t.Processes[s.ProcessID]; ok {
		return p.ServiceName
	}
	return s.ProcessID
}

// Span returns the span with this ID.
func (t *Trace) Span(id string) (*Span, bool) {
	for i := range t.Spans {
		if t.Spans[i].SpanID == id {
			return &t.Spans[i], true
		}
	}
	return nil, false
}

// Hop is one hop log of a span: clt-storage names the event by the hop's
// one-line summary ("hop 2 · aramis (node 3) · if 31 → – · +50.213 ms",
// plugin.IsHopEvent) and puts the fields in ioam.* keys (docs/contracts.md).
type Hop struct {
	// Summary is the event name, the line the UI shows collapsed.
	Summary string
	// Label is the node's label in the summary: its name, else "node <id>".
	Label string
	// Index is ioam.hop_index (0 = first node of the path), -1 when absent.
	Index int64
	// NodeID is ioam.node_id, -1 when absent.
	NodeID int64
	// IngressIf and EgressIf are ioam.ingress_if / ioam.egress_if, -1 when absent.
	IngressIf, EgressIf int64
	// Time is ioam.timestamp parsed (zero when absent or unparsable).
	Time time.Time
	// LogTime is the log's own timestamp.
	LogTime time.Time
	// Fields holds every field of the log except "event", as rendered strings.
	Fields map[string]string
}

// Field returns a hop field as an integer.
func (h Hop) Field(key string) (int64, bool) {
	v, ok := h.Fields[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 0, 64)
	return n, err == nil
}

// Hops returns the span's hop logs ordered by hop index (then time).
func (s *Span) Hops() []Hop {
	var hops []Hop
	for _, l := range s.Logs {
		ev, ok := find(l.Fields, "event")
		if !ok || !plugin.IsHopEvent(ev.String()) {
			continue
		}
		h := Hop{Summary: ev.String(), Label: summaryLabel(ev.String()), Index: -1, NodeID: -1, IngressIf: -1, EgressIf: -1,
			LogTime: time.UnixMicro(l.Timestamp).UTC(), Fields: map[string]string{}}
		for _, f := range l.Fields {
			if f.Key == "event" {
				continue
			}
			h.Fields[f.Key] = f.String()
			switch f.Key {
			case plugin.AttrHopIndex:
				h.Index, _ = intOr(f, -1)
			case plugin.AttrNodeID:
				h.NodeID, _ = intOr(f, -1)
			case plugin.AttrIngressIf:
				h.IngressIf, _ = intOr(f, -1)
			case plugin.AttrEgressIf:
				h.EgressIf, _ = intOr(f, -1)
			case plugin.AttrTimestamp:
				if ts, err := time.Parse(time.RFC3339Nano, f.String()); err == nil {
					h.Time = ts.UTC()
				}
			}
		}
		hops = append(hops, h)
	}
	sort.SliceStable(hops, func(i, j int) bool {
		if hops[i].Index != hops[j].Index {
			return hops[i].Index < hops[j].Index
		}
		return hops[i].LogTime.Before(hops[j].LogTime)
	})
	return hops
}

// summaryLabel is the node label of a hop summary: its second part
// ("aramis (node 3)"), without the id clt-storage adds after a name.
func summaryLabel(summary string) string {
	parts := strings.Split(summary, plugin.SummarySeparator)
	if len(parts) < 2 {
		return ""
	}
	label := parts[1]
	if i := strings.LastIndex(label, " (node "); i > 0 && strings.HasSuffix(label, ")") {
		label = label[:i]
	}
	return label
}

// Name returns the hop's node name, "" when clt-storage knows none (the
// label is then the default "node <id>").
func (h Hop) Name() string {
	if h.Label == "" || h.NodeID >= 0 && h.Label == plugin.FallbackNodeLabel(uint64(h.NodeID), false) {
		return ""
	}
	return h.Label
}

func intOr(kv KeyValue, def int64) (int64, bool) {
	if n, ok := kv.Int(); ok {
		return n, true
	}
	return def, false
}
