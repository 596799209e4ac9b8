// Command soak drives a steady load against a running clt-storage for
// scripts/soak.sh (`make soak`): OTLP Export, IOAM Reports and FindTraces at
// fixed rates (package soakload), and every -every it prints one line with
// the server's resident memory (RSS and its anonymous part), goroutines,
// open file descriptors and disk use:
//
//	t=<s> spans=<n> records=<n> queries=<n> errors=<n> rss_mib=<f> rss_anon_mib=<f> heap_inuse_mib=<f> goroutines=<n> fds=<n> disk_mib=<f>
//
// It runs for -duration, then prints the peak and the last RSS.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/api/storagev2"
	"github.com/cross-layer-telemetry/clt/plugin/internal/soakload"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run() error {
	storage := flag.String("storage", "127.0.0.1:17271", "clt-storage storage.listen")
	collector := flag.String("collector", "127.0.0.1:7123", "clt-storage collector.listen")
	metrics := flag.String("metrics", "http://127.0.0.1:17270/metrics", "clt-storage admin /metrics URL")
	pid := flag.Int("pid", 0, "clt-storage process id (RSS and fds from /proc)")
	dir := flag.String("dir", "", "clt-storage store.dir (disk use)")
	duration := flag.Duration("duration", 5*time.Minute, "how long to run")
	every := flag.Duration("every", 30*time.Second, "report interval")
	spans := flag.Int("spans", 5000, "spans per second")
	records := flag.Int("records", 1000, "IOAM records per second")
	queries := flag.Int("queries", 5, "FindTraces per second")
	flag.Parse()
	if *pid <= 0 {
		return fmt.Errorf("-pid is required")
	}
	dial := func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	sc, err := dial(*storage)
	if err != nil {
		return err
	}
	defer sc.Close()
	cc, err := dial(*collector)
	if err != nil {
		return err
	}
	defer cc.Close()
	load := &soakload.Load{
		OTLP: coltracepb.NewTraceServiceClient(sc), Collector: collectorv1.NewCollectorServiceClient(cc),
		Reader:      storagev2.NewTraceReaderClient(sc),
		SpansPerSec: *spans, RecordsPerSec: *records, QueriesPerSec: *queries, Seed: uint64(time.Now().UnixNano()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- load.Run(ctx) }()

	start := time.Now()
	var peak, last float64
	t := time.NewTicker(*every)
	defer t.Stop()
	report := func() {
		c := load.Counts()
		rss, anon := procStatus(*pid)
		m := scrape(*metrics)
		last = rss
		peak = max(peak, rss)
		fmt.Printf("t=%.0f spans=%d records=%d queries=%d errors=%d rss_mib=%.1f rss_anon_mib=%.1f heap_inuse_mib=%.1f goroutines=%.0f fds=%d disk_mib=%.1f\n",
			time.Since(start).Seconds(), c.Spans, c.Records, c.Queries, c.Errors, rss, anon,
			m["go_memstats_heap_inuse_bytes"]/(1<<20), m["go_goroutines"], fds(*pid), float64(du(*dir))/(1<<20))
	}
	for {
		select {
		case <-t.C:
			report()
			continue
		case err := <-done:
			report()
			fmt.Printf("peak_rss_mib=%.1f last_rss_mib=%.1f\n", peak, last)
			return err
		}
	}
}

// procStatus returns VmRSS and RssAnon of pid in MiB.
func procStatus(pid int) (rss, anon float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "RssAnon":
			anon = kb / 1024
		}
	}
	return rss, anon
}

func fds(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// du is the bytes allocated by the files under dir.
func du(dir string) int64 {
	if dir == "" {
		return 0
	}
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += allocated(fi)
		}
		return nil
	})
	return n
}

// scrape reads the unlabelled samples of a Prometheus text page.
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, " "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = f
			}
		}
	}
	return out
}
