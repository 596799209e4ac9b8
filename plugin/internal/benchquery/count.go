package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// countLimit is the traces asked for per search window; a window that
// returns this many is split in two (clt-storage clamps a search at its
// max_search_depth, 10000 by default, so a larger limit could undercount).
const countLimit = 2000

// countSpans reads back every span of service that started in [from, to]
// through Jaeger's HTTP search, in windows (first `windows` equal ones,
// each split again while it returns countLimit traces), and counts
// distinct (trace, span) pairs: what the store returns, not what a metric
// says.
func countSpans(ctx context.Context, base, service string, from, to time.Time, windows int) (spans, traces int, err error) {
	seen := map[string]struct{}{}
	tracesSeen := map[string]struct{}{}
	var window func(from, to time.Time, depth int) error
	window = func(from, to time.Time, depth int) error {
		if depth > 30 {
			return fmt.Errorf("window %s..%s: more than %d traces in under a microsecond", from, to, countLimit)
		}
		v := url.Values{"service": {service}, "limit": {strconv.Itoa(countLimit)},
			"start": {strconv.FormatInt(from.UnixMicro(), 10)}, "end": {strconv.FormatInt(to.UnixMicro(), 10)}}
		b, err := get(ctx, base+"/api/traces?"+v.Encode())
		if err != nil {
			return err
		}
		var resp struct {
			Data []struct {
				TraceID string `json:"traceID"`
				Spans   []struct {
					SpanID string `json:"spanID"`
				} `json:"spans"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &resp); err != nil {
			return fmt.Errorf("decode search: %w", err)
		}
		if len(resp.Data) >= countLimit {
			mid := from.Add(to.Sub(from) / 2)
			if err := window(from, mid, depth+1); err != nil {
				return err
			}
			return window(mid.Add(time.Microsecond), to, depth+1)
		}
		for _, t := range resp.Data {
			tracesSeen[t.TraceID] = struct{}{}
			for _, s := range t.Spans {
				seen[t.TraceID+"/"+s.SpanID] = struct{}{}
			}
		}
		return nil
	}
	windows = max(windows, 1)
	step := to.Sub(from) / time.Duration(windows)
	for i := range windows {
		end := from.Add(step)
		if i == windows-1 {
			end = to
		}
		if err := window(from, end, 0); err != nil {
			return 0, 0, err
		}
		from = end.Add(time.Microsecond)
	}
	return len(seen), len(tracesSeen), nil
}
