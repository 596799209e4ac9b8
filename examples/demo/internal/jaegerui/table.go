package jaegerui

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/cross-layer-telemetry/clt/plugin"
)

// Options tune Render.
type Options struct{}

// spanTags are the span-level IOAM summary tags shown on the span's line, in order.
var spanTags = []struct{ key, label string }{
	{plugin.AttrNamespaceID, "ns"},
	{plugin.AttrHopCount, "hops"},
	{plugin.AttrPath, "path"},
	{plugin.AttrPackets, "pkts"},
	{plugin.AttrReporters, "reporters"},
	{plugin.AttrTransitDelayMaxNs, "max_transit_ns"},
	{plugin.AttrQueueDepthMaxBytes, "max_qdepth_bytes"},
	{plugin.AttrOverflow, "overflow"},
	{plugin.AttrPathChanged, "path_changed"},
}

// hopColumns are the hop fields that have their own column; others go to "extra".
var hopColumns = map[string]bool{
	plugin.AttrHopIndex: true, plugin.AttrNodeID: true, plugin.AttrIngressIf: true,
	plugin.AttrEgressIf: true, plugin.AttrTimestamp: true, plugin.AttrLinkDelayNs: true,
}

// Render writes the trace as a table: one line per application span
// (indented under its parent, ordered by start time), the span's IOAM
// summary, its warnings, and one line per hop log below it with the node's
// name (as clt-storage labels it) and the delay since the previous hop.
// clt-storage's network spans are counted, not listed: the hop lines say the
// same.
func Render(w io.Writer, t *Trace, opt Options) error {
	var b strings.Builder
	start, end := bounds(t)
	synthetic := 0
	for i := range t.Spans {
		if t.Spans[i].Synthetic() {
			synthetic++
		}
	}
	fmt.Fprintf(&b, "trace %s  (%d spans + %d network spans, %s)\n", t.TraceID, len(t.Spans)-synthetic, synthetic, ms(end-start))
	for _, wn := range t.Warnings {
		fmt.Fprintf(&b, "  ! %s\n", wn)
	}
	fmt.Fprintf(&b, "  %-40s %-8s %10s %10s  %s\n", "SPAN", "SERVICE", "START(ms)", "DUR(ms)", "IOAM")

	children := map[string][]*Span{}
	var roots []*Span
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.Synthetic() {
			continue
		}
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
		line := fmt.Sprintf("  %-40s %-8s %10s %10s  %s", name, t.Service(s), msf(s.StartTime-start), msf(s.Duration), summary(s))
		b.WriteString(strings.TrimRight(line, " ") + "\n")
		for _, wn := range s.Warnings {
			fmt.Fprintf(&b, "  %s  ! %s\n", indent, wn)
		}
		renderHops(&b, indent+"    ", s.Hops())
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

func renderHops(b *strings.Builder, indent string, hops []Hop) {
	if len(hops) == 0 {
		return
	}
	fmt.Fprintf(b, "  %s%-4s %-14s %6s %6s  %-15s %11s  %s\n", indent, "HOP", "NODE", "IN", "OUT", "TIME(UTC)", "+PREV(ms)", "EXTRA")
	var prev time.Time
	for _, h := range hops {
		node := num(h.NodeID)
		if name := h.Name(); name != "" {
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
		parts = append(parts, strings.TrimPrefix(k, "ioam.")+"="+h.Fields[k])
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
