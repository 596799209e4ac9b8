// Command benchquery measures query latency for scripts/bench-storage.sh:
// through Jaeger's HTTP API (what the UI calls: /api/traces?service=…,
// /api/traces/{id}) and, with -grpc, directly against a jaeger.storage.v2
// server (clt-storage). It prints one line per measurement:
//
//	<label> <rpc> n=<count> p50=<ms> p99=<ms>
//
// With -count it instead reads back every span of the service that started
// in a time range (scripts/bench-v1.sh verifies what was stored):
//
//	<label> read_back spans=<count> traces=<count>
//
// Every loop is bounded by -n and -timeout.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cross-layer-telemetry/clt/api/storagev2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchquery:", err)
		os.Exit(1)
	}
}

func run() error {
	jaeger := flag.String("jaeger", "", "Jaeger query HTTP base URL, e.g. http://127.0.0.1:16686")
	grpcAddr := flag.String("grpc", "", "jaeger.storage.v2 gRPC address (optional)")
	service := flag.String("service", "tracegen-01", "service to search")
	label := flag.String("label", "run", "label printed on each line")
	n := flag.Int("n", 200, "queries per measurement")
	timeout := flag.Duration("timeout", 2*time.Minute, "overall bound")
	count := flag.Bool("count", false, "only read back and count the service's spans that started in [-from, -to]")
	from := flag.Int64("from", 0, "with -count: start of the range, Unix µs")
	to := flag.Int64("to", 0, "with -count: end of the range, Unix µs")
	windows := flag.Int("windows", 1, "with -count: equal search windows to start with (more when one holds too many traces)")
	queryTimeout := flag.Duration("query-timeout", 30*time.Second, "bound of one query; a query over it is reported as a timeout")
	budget := flag.Duration("budget", 0, "time bound of one measurement (0: none): it stops after this long with the queries done so far")
	window := flag.Duration("window", time.Hour, "searches cover start times from now minus window to now")
	idLookback := flag.Duration("id-lookback", time.Hour, "the trace IDs for GetTrace come from one search of this lookback")
	tag := flag.String("tag", "", "key=value: also measure the searches with this tag")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	m := meter{label: *label, n: *n, budget: *budget, queryTimeout: *queryTimeout}

	if *count {
		spans, traces, err := countSpans(ctx, *jaeger, *service, time.UnixMicro(*from), time.UnixMicro(*to), *windows)
		if err != nil {
			return err
		}
		fmt.Printf("%s read_back spans=%d traces=%d\n", *label, spans, traces)
		return nil
	}

	ids, err := traceIDs(ctx, *jaeger, *service, *idLookback, *queryTimeout)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("no traces found")
	}
	var tagKey, tagValue string
	if *tag != "" {
		var ok bool
		if tagKey, tagValue, ok = strings.Cut(*tag, "="); !ok {
			return fmt.Errorf("-tag %q: want key=value", *tag)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now()
	start := end.Add(-*window)
	search := url.Values{"service": {*service}, "limit": {"20"},
		"start": {strconv.FormatInt(start.UnixMicro(), 10)}, "end": {strconv.FormatInt(end.UnixMicro(), 10)}}
	m.run(ctx, "http-FindTraces", func(ctx context.Context) error {
		_, err := get(ctx, *jaeger+"/api/traces?"+search.Encode())
		return err
	})
	if tagKey != "" {
		withTag := url.Values{}
		for k, v := range search {
			withTag[k] = v
		}
		withTag.Set("tags", fmt.Sprintf("{%q:%q}", tagKey, tagValue))
		m.run(ctx, "http-FindTraces-tag", func(ctx context.Context) error {
			_, err := get(ctx, *jaeger+"/api/traces?"+withTag.Encode())
			return err
		})
	}
	m.run(ctx, "http-GetTrace", func(ctx context.Context) error {
		_, err := get(ctx, *jaeger+"/api/traces/"+ids[rng.IntN(len(ids))])
		return err
	})
	if m.err != nil || *grpcAddr == "" {
		return m.err
	}
	conn, err := grpc.NewClient(*grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := storagev2.NewTraceReaderClient(conn)
	drain := func(recv func() error) error {
		for range 100000 {
			if err := recv(); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
		}
		return errors.New("stream too long")
	}
	find := func(attrs []*storagev2.KeyValue) func(context.Context) error {
		return func(ctx context.Context) error {
			st, err := c.FindTraces(ctx, &storagev2.FindTracesRequest{Query: &storagev2.TraceQueryParameters{
				ServiceName: *service, SearchDepth: 20, Attributes: attrs,
				StartTimeMin: timestamppb.New(start), StartTimeMax: timestamppb.New(end)}})
			if err != nil {
				return err
			}
			return drain(func() error { _, err := st.Recv(); return err })
		}
	}
	m.run(ctx, "grpc-FindTraces", find(nil))
	if tagKey != "" {
		m.run(ctx, "grpc-FindTraces-tag", find([]*storagev2.KeyValue{{Key: tagKey,
			Value: &storagev2.AnyValue{Value: &storagev2.AnyValue_StringValue{StringValue: tagValue}}}}))
	}
	m.run(ctx, "grpc-GetTraces", func(ctx context.Context) error {
		id, _ := hex.DecodeString(ids[rng.IntN(len(ids))])
		st, err := c.GetTraces(ctx, &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id}}})
		if err != nil {
			return err
		}
		return drain(func() error { _, err := st.Recv(); return err })
	})
	return m.err
}

// traceIDs collects up to 1000 trace IDs of the service from the lookback.
func traceIDs(ctx context.Context, base, service string, lookback, timeout time.Duration) ([]string, error) {
	end := time.Now()
	v := url.Values{"service": {service}, "limit": {"1000"},
		"start": {strconv.FormatInt(end.Add(-lookback).UnixMicro(), 10)}, "end": {strconv.FormatInt(end.UnixMicro(), 10)}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, err := get(ctx, base+"/api/traces?"+v.Encode())
	if err != nil {
		return nil, fmt.Errorf("collect trace IDs: %w", err)
	}
	var resp struct {
		Data []struct {
			TraceID string `json:"traceID"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("decode search: %w", err)
	}
	ids := make([]string, 0, len(resp.Data))
	for _, t := range resp.Data {
		ids = append(ids, t.TraceID)
	}
	return ids, nil
}

func get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return b, nil
}

// meter runs measurements; the first error (not a timeout) stops the
// later ones and is kept in err.
type meter struct {
	label        string
	n            int
	budget       time.Duration
	queryTimeout time.Duration
	err          error
}

func (m *meter) run(ctx context.Context, name string, fn func(context.Context) error) {
	if m.err != nil {
		return
	}
	lat := make([]time.Duration, 0, m.n)
	began := time.Now()
	for range m.n {
		if m.budget > 0 && time.Since(began) > m.budget {
			break
		}
		qctx, cancel := context.WithTimeout(ctx, m.queryTimeout)
		t0 := time.Now()
		err := fn(qctx)
		d := time.Since(t0)
		timedOut := qctx.Err() != nil && ctx.Err() == nil
		cancel()
		if timedOut {
			fmt.Printf("%s %s timeout=%s n=%d\n", m.label, name, m.queryTimeout, len(lat))
			return
		}
		if err != nil {
			m.err = fmt.Errorf("%s: %w", name, err)
			return
		}
		lat = append(lat, d)
	}
	if len(lat) == 0 {
		m.err = fmt.Errorf("%s: no query ran", name)
		return
	}
	slices.Sort(lat)
	n := len(lat)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) }
	fmt.Printf("%s %s n=%d p50=%s p99=%s\n", m.label, name, n, ms(lat[n/2]), ms(lat[min(n-1, n*99/100)]))
}
