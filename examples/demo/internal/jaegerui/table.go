package jaegerui

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options tune Render.
type Options struct {
	// NodeNames maps IOAM node ids to names shown next to them (e.g. 2 → "porthos").
	NodeNames map[int64]string
}

// spanTags are the span-level IOAM summary tags shown on the span's line, in order.
var spanTags = []struct{ key, label string }{
	{"ioam.namespace_id", "ns"},
	{"ioam.hop_count", "hops"},
	{"ioam.path", "path"},
	{"ioam.packets", "pkts"},
	{"ioam.reporters", "reporters"},
	{"ioam.transit_delay_max_ns", "max_transit_ns"},
	{"ioam.queue_depth_max", "max_qdepth"},
	{"ioam.overflow", "overflow"},
}

// hopColumns are the hop fields that have their own column; others go to "extra".
var hopColumns = map[string]bool{
	"ioam.hop_index": true, "ioam.node_id": true, "ioam.ingress_if": true,
	"ioam.egress_if": true, "ioam.timestamp": true,
}

// Render writes the trace as a table: one line per span (indented under its
// parent, ordered by start time), the span's IOAM summary, its warnings, and
// one line per `ioam.hop` log below it, with the delay since the previous hop.
func Render(w io.Writer, t *Trace, opt Options) error {
	var b strings.Builder
	start, end := bounds(t)
	fmt.Fprintf(&b, "trace %s  (%d spans, %s)\n", t.TraceID, len(t.Spans), ms(end-start))
	for _, wn := range t.Warnings {
		fmt.Fprintf(&b, "  ! %s\n", wn)
	}
	fmt.Fprintf(&b, "  %-40s %-8s %10s %10s  %s\n", "SPAN", "SERVICE", "START(ms)", "DUR(ms)", "IOAM")

	children := map[string][]*Span{}
	var roots []*Span
	for i := range t.Spans {
		s := &t.Spans[i]
		p := s.ParentID()
		if _, ok := t.Span(p); p == "" || !ok {
			roots = append(roots, s)
			continue
		}
		children[p] = append(children[p], s)
	}
	byStart := func(ss []*Span) {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].StartTime < ss[j].StartTime })
	}
	byStart(roots)
	var walk func(s *Span, depth int)
	walk = func(s *Span, depth int) {
		indent := strings.Repeat("  ", depth)
		name := indent + s.OperationName
		fmt.Fprintf(&b, "  %-40s %-8s %10s %10s  %s\n", name, t.Service(s),
			msf(s.StartTime-start), msf(s.Duration), summary(s))
		for _, wn := range s.Warnings {
			fmt.Fprintf(&b, "  %s  ! %s\n", indent, wn)
		}
		renderHops(&b, indent+"    ", s.Hops(), opt)
		kids := children[s.SpanID]
		byStart(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func renderHops(b *strings.Builder, indent string, hops []Hop, opt Options) {
	if len(hops) == 0 {
		return
	}
	fmt.Fprintf(b, "  %s%-4s %-14s %6s %6s  %-15s %11s  %s\n", indent, "HOP", "NODE", "IN", "OUT", "TIME(UTC)", "+PREV(ms)", "EXTRA")
	var prev time.Time
	for _, h := range hops {
		node := num(h.NodeID)
		if name, ok := opt.NodeNames[h.NodeID]; ok {
			node += " " + name
		}
		ts, delta := "-", ""
		if !h.Time.IsZero() {
			ts = h.Time.Format("15:04:05.000000")
			if !prev.IsZero() {
				delta = fmt.Sprintf("%+.3f", float64(h.Time.Sub(prev))/float64(time.Millisecond))
			}
			prev = h.Time
		}
		fmt.Fprintf(b, "  %s%-4s %-14s %6s %6s  %-15s %11s  %s\n", indent, num(h.Index), node,
			num(h.IngressIf), num(h.EgressIf), ts, delta, extra(h))
	}
}

func extra(h Hop) string {
	keys := make([]string, 0, len(h.Fields))
	for k := range h.Fields {
		if !hopColumns[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		v := h.Fields[k]
		switch {
		// A transit node's empty snapshot (length 0, schema all ones) says nothing.
		case k == "ioam.snapshot_len" && v == "0",
			k == "ioam.snapshot_schema_id" && v == "16777215":
			continue
		case k == "ioam.snapshot_schema_id":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				v = fmt.Sprintf("%#x", n)
			}
		}
		parts = append(parts, strings.TrimPrefix(k, "ioam.")+"="+v)
	}
	return strings.Join(parts, " ")
}

func summary(s *Span) string {
	var parts []string
	for _, st := range spanTags {
		if kv, ok := s.Tag(st.key); ok {
			parts = append(parts, st.label+"="+kv.String())
		}
	}
	return strings.Join(parts, " ")
}

func bounds(t *Trace) (start, end int64) {
	for i, s := range t.Spans {
		if i == 0 || s.StartTime < start {
			start = s.StartTime
		}
		if e := s.StartTime + s.Duration; i == 0 || e > end {
			end = e
		}
	}
	return start, end
}

func num(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// msf formats microseconds as milliseconds with µs precision.
func msf(us int64) string { return fmt.Sprintf("%.3f", float64(us)/1000) }

func ms(us int64) string { return msf(us) + " ms" }
