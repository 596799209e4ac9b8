package ioamstore

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestFindTraceIDsRandomized compares FindTraceIDs with a brute-force
// evaluation of the same rules over what was written, on random data written
// in random batches (traces split across batches, spans spread over several
// minutes so that index entries are split and time seeks matter).
func TestFindTraceIDsRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 1))
	s := openTest(t, true)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	services := []string{"a", "b", "c"}
	ops := []string{"get", "put", "scan"}

	type rec struct {
		service string
		res     []*commonpb.KeyValue
		span    *tracepb.Span
	}
	var all []rec
	randAttr := func() *commonpb.KeyValue {
		k := fmt.Sprintf("k%d", rng.IntN(4))
		switch rng.IntN(4) {
		case 0:
			return strKV(k, fmt.Sprintf("v%d", rng.IntN(5)))
		case 1:
			return intKV(k, int64(rng.IntN(5)))
		case 2:
			return boolKV(k, rng.IntN(2) == 0)
		default:
			return dblKV(k, float64(rng.IntN(5))+0.5)
		}
	}
	const nTraces = 150
	var pending []rec
	flush := func() {
		var rss []*tracepb.ResourceSpans
		for _, r := range pending {
			rs := resSpans(r.service, r.res, nil, r.span)
			rs.ScopeSpans[0].Scope.Attributes = nil
			rss = append(rss, rs)
		}
		if len(rss) > 0 {
			write(t, s, rss...)
		}
		pending = pending[:0]
	}
	for tr := range nTraces {
		nSpans := 1 + rng.IntN(5)
		tStart := base.Add(time.Duration(rng.IntN(90)) * time.Minute)
		for sp := range nSpans {
			start := tStart.Add(time.Duration(rng.IntN(180)) * time.Second)
			opts := []spanOpt{}
			for range rng.IntN(3) {
				opts = append(opts, withAttrs(randAttr()))
			}
			if rng.IntN(4) == 0 {
				opts = append(opts, withEvent("e", randAttr()))
			}
			if rng.IntN(5) == 0 {
				opts = append(opts, withStatus(tracepb.Status_STATUS_CODE_ERROR))
			}
			span := newSpan(tid(uint64(tr)), uint64(sp), ops[rng.IntN(len(ops))], start,
				time.Duration(1+rng.IntN(100))*time.Millisecond, opts...)
			var res []*commonpb.KeyValue
			if rng.IntN(3) == 0 {
				res = append(res, randAttr())
			}
			r := rec{services[rng.IntN(len(services))], res, span}
			all = append(all, r)
			pending = append(pending, r)
			if rng.IntN(8) == 0 {
				flush()
			}
		}
	}
	flush()

	str := func(v *commonpb.AnyValue) string {
		switch x := v.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			return x.StringValue
		case *commonpb.AnyValue_IntValue:
			return strconv.FormatInt(x.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			return strconv.FormatBool(x.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			return strconv.FormatFloat(x.DoubleValue, 'f', -1, 64)
		}
		return ""
	}
	has := func(r rec, k, v string) bool {
		lists := [][]*commonpb.KeyValue{r.span.Attributes, r.res, {strKV("service.name", r.service)}}
		for _, e := range r.span.Events {
			lists = append(lists, e.Attributes)
		}
		for _, l := range lists {
			for _, kv := range l {
				if kv.Key == k && str(kv.Value) == v {
					return true
				}
			}
		}
		return false
	}
	brute := func(q Query) map[[16]byte]bool {
		out := map[[16]byte]bool{}
		for _, r := range all {
			sp := r.span
			st, dur := time.Unix(0, int64(sp.StartTimeUnixNano)), time.Duration(sp.EndTimeUnixNano-sp.StartTimeUnixNano)
			isErr := sp.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR
			ok := r.service == q.Service &&
				(q.Operation == "" || q.Operation == sp.Name) &&
				(q.StartMin.IsZero() || !st.Before(q.StartMin)) && (q.StartMax.IsZero() || !st.After(q.StartMax)) &&
				dur >= q.DurationMin && (q.DurationMax == 0 || dur <= q.DurationMax)
			for k, v := range q.Attributes {
				switch {
				case k == "error" && v == "true":
					ok = ok && (isErr || has(r, k, v))
				case k == "error" && v == "false":
					ok = ok && !isErr
				default:
					ok = ok && has(r, k, v)
				}
			}
			if ok {
				out[[16]byte(sp.TraceId)] = true
			}
		}
		return out
	}

	nonEmpty := 0
	for qi := range 300 {
		q := Query{Service: services[rng.IntN(len(services))], SearchDepth: nTraces}
		if rng.IntN(3) == 0 {
			q.Operation = ops[rng.IntN(len(ops))]
		}
		if rng.IntN(2) == 0 {
			q.StartMin = base.Add(time.Duration(rng.IntN(95)) * time.Minute)
		}
		if rng.IntN(2) == 0 {
			q.StartMax = base.Add(time.Duration(rng.IntN(95)) * time.Minute)
			if !q.StartMin.IsZero() && q.StartMax.Before(q.StartMin) {
				q.StartMin, q.StartMax = q.StartMax, q.StartMin
			}
		}
		if rng.IntN(3) == 0 {
			q.DurationMin = time.Duration(rng.IntN(100)) * time.Millisecond
		}
		if rng.IntN(3) == 0 {
			q.DurationMax = q.DurationMin + time.Duration(rng.IntN(100))*time.Millisecond
		}
		if rng.IntN(2) == 0 {
			q.Attributes = map[string]string{}
			for range 1 + rng.IntN(2) {
				kv := randAttr()
				q.Attributes[kv.Key] = str(kv.Value)
			}
			if rng.IntN(4) == 0 {
				q.Attributes["error"] = []string{"true", "false"}[rng.IntN(2)]
			}
		}
		want := brute(q)
		got := find(t, s, q)
		gotSet := map[[16]byte]bool{}
		for _, id := range got {
			require.False(t, gotSet[id], "query %d: trace returned twice", qi)
			gotSet[id] = true
		}
		require.Equal(t, want, gotSet, "query %d: %+v", qi, q)
		if len(want) > 0 {
			nonEmpty++
			// a smaller depth returns a prefix-sized subset
			q.SearchDepth = 1 + rng.IntN(len(want))
			got := find(t, s, q)
			require.Len(t, got, q.SearchDepth)
			for _, id := range got {
				require.True(t, want[id])
			}
		}
	}
	require.Greater(t, nonEmpty, 50, "queries should often match something")
}
