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
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	if *count {
		spans, traces, err := countSpans(ctx, *jaeger, *service, time.UnixMicro(*from), time.UnixMicro(*to), *windows)
		if err != nil {
			return err
		}
		fmt.Printf("%s read_back spans=%d traces=%d\n", *label, spans, traces)
		return nil
	}

	ids, err := traceIDs(ctx, *jaeger, *service)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("no traces found")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	end := time.Now()
	start := end.Add(-time.Hour)
	search := url.Values{"service": {*service}, "limit": {"20"},
		"start": {strconv.FormatInt(start.UnixMicro(), 10)}, "end": {strconv.FormatInt(end.UnixMicro(), 10)}}
	if err := measure(*label, "http-FindTraces", *n, func() error {
		_, err := get(ctx, *jaeger+"/api/traces?"+search.Encode())
		return err
	}); err != nil {
		return err
	}
	if err := measure(*label, "http-GetTrace", *n, func() error {
		_, err := get(ctx, *jaeger+"/api/traces/"+ids[rng.IntN(len(ids))])
		return err
	}); err != nil {
		return err
	}
	if *grpcAddr == "" {
		return nil
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
	if err := measure(*label, "grpc-FindTraces", *n, func() error {
		st, err := c.FindTraces(ctx, &storagev2.FindTracesRequest{Query: &storagev2.TraceQueryParameters{
			ServiceName: *service, SearchDepth: 20, StartTimeMin: timestamppb.New(start), StartTimeMax: timestamppb.New(end)}})
		if err != nil {
			return err
		}
		return drain(func() error { _, err := st.Recv(); return err })
	}); err != nil {
		return err
	}
	return measure(*label, "grpc-GetTraces", *n, func() error {
		id, _ := hex.DecodeString(ids[rng.IntN(len(ids))])
		st, err := c.GetTraces(ctx, &storagev2.GetTracesRequest{Query: []*storagev2.GetTraceParams{{TraceId: id}}})
		if err != nil {
			return err
		}
		return drain(func() error { _, err := st.Recv(); return err })
	})
}

// traceIDs collects up to 1000 trace IDs of the service from the last hour.
func traceIDs(ctx context.Context, base, service string) ([]string, error) {
	v := url.Values{"service": {service}, "limit": {"1000"}, "lookback": {"1h"}}
	b, err := get(ctx, base+"/api/traces?"+v.Encode())
	if err != nil {
		return nil, err
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

func measure(label, name string, n int, fn func() error) error {
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64) }
	fmt.Printf("%s %s n=%d p50=%s p99=%s\n", label, name, n, ms(lat[n/2]), ms(lat[min(n-1, n*99/100)]))
	return nil
}
