package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cross-layer-telemetry/clt/examples/demo/internal/jaegerui"
	"github.com/cross-layer-telemetry/clt/examples/demo/internal/roles"
)

// hopDelta returns aramis's IOAM timestamp minus porthos's for a sub-request
// span: the time the request spent between porthos's ingress and aramis's
// ingress (the link, and netem when on).
func hopDelta(t *jaegerui.Trace, spanID string) (time.Duration, bool) {
	s, ok := t.Span(spanID)
	if !ok {
		return 0, false
	}
	var p, a time.Time
	for _, h := range s.Hops() {
		switch h.NodeID {
		case nodePorthos:
			p = h.Time
		case nodeAramis:
			a = h.Time
		}
	}
	if p.IsZero() || a.IsZero() {
		return 0, false
	}
	return a.Sub(p), true
}

func traceByID(ph *Phase, id string) *jaegerui.Trace {
	for _, t := range ph.Traces {
		if t.TraceID == id {
			return t
		}
	}
	return nil
}

// printPhase writes every trace of the phase as a table, then a summary line
// per request.
func printPhase(w io.Writer, ph *Phase) {
	title := fmt.Sprintf("phase %q", ph.Name)
	switch ph.Kind.API {
	case roles.PathReroute:
		title += " — one span, two requests: porthos → aramis, then porthos → planchet → aramis"
	case roles.PathReport:
		title += fmt.Sprintf(" — %d hop slot for porthos and aramis", reportSlots)
	}
	if ph.Netem > 0 {
		title += fmt.Sprintf(" — %s delay %s on porthos → aramis", ph.DelayBy, ph.Netem)
	} else {
		title += " — no added delay"
	}
	fmt.Fprintf(w, "\n=== %s ===\n", title)
	for _, r := range ph.Results {
		fmt.Fprintln(w)
		t := traceByID(ph, r.TraceID)
		if t == nil {
			fmt.Fprintf(w, "trace %s: not in Jaeger\n", r.TraceID)
			continue
		}
		_ = jaegerui.Render(w, t, jaegerui.Options{})
	}
	if ph.Kind.API != roles.PathRequest {
		return
	}
	fmt.Fprintf(w, "\n%-4s %-32s %9s  %-22s %-22s\n", "REQ", "TRACE", "API(ms)", "/check porthos→aramis", "/validate porthos→aramis")
	for _, r := range ph.Results {
		cols := []string{"-", "-"}
		if t := traceByID(ph, r.TraceID); t != nil {
			for i, sub := range r.API.Subs {
				if i < 2 {
					if d, ok := hopDelta(t, sub.SpanID); ok {
						cols[i] = fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
					}
				}
			}
		}
		fmt.Fprintf(w, "%-4d %-32s %9.3f  %-22s %-22s%s\n", r.Seq, r.TraceID, float64(r.DurationUS)/1000, cols[0], cols[1], connNote(r))
	}
}

// connNote says whether both sub-requests used one connection.
func connNote(r roles.ClientResult) string {
	if len(r.API.Subs) < 2 {
		return ""
	}
	a, b := r.API.Subs[0], r.API.Subs[1]
	if a.LocalAddr != "" && a.LocalAddr == b.LocalAddr {
		return "  one connection " + a.LocalAddr
	}
	return "  connections " + strings.Join([]string{a.LocalAddr, b.LocalAddr}, ", ")
}

// Phase is one batch of API calls.
type Phase struct {
	Name string
	Kind phaseKind
	// Netem is the delay on porthos → aramis during the phase.
	Netem time.Duration
	// DelayBy is "tc netem" or "wire" when Netem > 0.
	DelayBy string
	Results []roles.ClientResult
	Traces  []*jaegerui.Trace
}
