package agent

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

// BenchmarkIntegrationAgentRate measures the built clt-agent binary end to end
// (ioam6_events → decode → aggregate → export to an in-process clt-storage) on
// a namespace chain, at fixed offered rates for a
// bounded time each. It reports events/s processed, events lost in the kernel
// (ENOBUFS), agent CPU per event, and the agent's resident memory idle and at
// peak. Run it alone (2 vCPUs are shared with the sender and forwarding):
//
//	CLT_BENCH_NETNS=1 go test -run '^$' -bench BenchmarkIntegrationAgentRate -benchtime 1x ./agent/
//
// It takes about a minute, so it runs only with CLT_BENCH_NETNS=1.
func BenchmarkIntegrationAgentRate(b *testing.B) {
	if os.Getenv("CLT_BENCH_NETNS") != "1" {
		b.Skip("set CLT_BENCH_NETNS=1 to run the namespace rate benchmark")
	}
	netnstest.RequirePrivileged(b)
	bin := filepath.Join(b.TempDir(), "clt-agent")
	build := exec.Command("go", "build", "-o", bin, "./cmd/clt-agent")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build clt-agent: %v", err)
	}
	for _, src := range []string{SourceNetlink, SourceCapture} {
		for _, rate := range []int{25000, 50000, 75000, 100000, 0} {
			name := fmt.Sprintf("source=%s/rate=%dk", src, rate/1000)
			if rate == 0 {
				name = fmt.Sprintf("source=%s/rate=max", src)
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					agentRateRun(b, bin, src, rate, 3*time.Second)
				}
			})
		}
	}
}

func agentRateRun(b *testing.B, bin, src string, rate int, dur time.Duration) {
	// As few forwarding hops as the source needs, so that the sender (which
	// shares the 2 vCPUs) can offer as much as possible: netlink reads the
	// destination's events (client–server), capture reads r1's egress
	// (client–r1–server).
	routers, node, ifs := 0, "server", "[]"
	if src == SourceCapture {
		routers, node, ifs = 1, "r1", "[r1b]"
	}
	topo := chainN(b, routers)
	st := startStorage(b)
	cfgPath := filepath.Join(b.TempDir(), "agent.yaml")
	wait := DefaultConfig().Source.BatchWait.String()
	if w := os.Getenv("CLT_BENCH_BATCH_WAIT"); w != "" {
		wait = w
	}
	cfg := fmt.Sprintf(`agent_id: bench
netns_path: %s
source: {kind: %s, interfaces: %s, batch_wait: %s}
namespaces: [{id: %d}]
export: {collector: "%s"}
admin: {listen: "127.0.0.1:0", pprof: true}
`, topo.Node(node).Path, src, ifs, wait, itNamespace, st.collector)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	// exited is closed once the agent has exited (waitErr then holds
	// Wait's result), so that the start check and the stop can both wait.
	exited := make(chan struct{})
	var waitErr error
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := adminRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var admin string
	select {
	case admin = <-addrc:
	case <-exited:
		b.Fatalf("agent exited: %v", waitErr)
	case <-time.After(10 * time.Second):
		b.Fatal("agent did not start")
	}
	time.Sleep(2 * time.Second)
	rssIdle, _ := procMem(pid)

	snd := newSender(b, topo.Node("client"), topo.Node("server").Addr("s0"))
	user0, sys0 := procCPU(pid)
	if prof := os.Getenv("CLT_AGENT_BENCH_PROFILE"); prof != "" {
		// Profile the agent while it works (go tool pprof FILE).
		go func() {
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, int(dur.Seconds())))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if f, err := os.Create(prof); err == nil {
				_, _ = io.Copy(f, resp.Body)
				_ = f.Close()
			}
		}()
	}
	b.ResetTimer()
	sent := senderFlood(b, snd, rate, dur)
	// Let the agent drain what the kernel queued.
	var received float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		r, err := scrape(admin, "clt_agent_events_received_total")
		if err != nil {
			b.Fatal(err)
		}
		if r >= float64(sent) || (r == received && r > 0) {
			received = r
			break
		}
		received = r
		time.Sleep(200 * time.Millisecond)
	}
	b.StopTimer()
	user1, sys1 := procCPU(pid)
	lost, _ := scrape(admin, "clt_agent_events_lost_total")
	decoded, _ := scrape(admin, "clt_agent_events_decoded_total")
	malformed, _ := scrape(admin, "clt_agent_events_malformed_total")
	time.Sleep(1500 * time.Millisecond) // window + batch delay: records leave
	exported, _ := scrape(admin, "clt_agent_records_exported_total")
	dropped, _ := scrape(admin, "clt_agent_records_dropped_total")
	_, hwm := procMem(pid)

	secs := dur.Seconds()
	b.ReportMetric(float64(sent)/secs, "sent/s")
	b.ReportMetric(received/secs, "events/s")
	b.ReportMetric(100*(float64(sent)-received)/float64(sent), "loss%")
	b.ReportMetric(lost, "enobufs")
	if received > 0 {
		b.ReportMetric(float64(user1-user0+sys1-sys0)/received, "cpu-ns/event")
		b.ReportMetric(float64(sys1-sys0)/received, "sys-ns/event")
	}
	b.ReportMetric(float64(rssIdle)/1024, "rss-idle-MiB")
	b.ReportMetric(float64(hwm)/1024, "rss-peak-MiB")
	b.ReportMetric(exported, "records")
	if malformed != 0 || decoded != received || dropped != 0 {
		b.Errorf("decoded %v of %v, malformed %v, records dropped %v", decoded, received, malformed, dropped)
	}
}

// senderFlood sends UDP datagrams with a sticky IOAM HBH whose IDs change
// every 100 datagrams, paced at rate per second (0: as fast as possible),
// for dur. It returns the number sent.
func senderFlood(b *testing.B, s *sender, rate int, dur time.Duration) int {
	payload := make([]byte, 64)
	start := time.Now()
	sent := 0
	for i := 0; ; i++ {
		if i%100 == 0 {
			if time.Since(start) >= dur {
				return sent
			}
			hbh := testHBH(b, itIDs(9, i/100))
			if err := unix.SetsockoptString(s.fd, unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, string(hbh)); err != nil {
				b.Fatal(err)
			}
		}
		if rate > 0 {
			if ahead := time.Duration(float64(sent)/float64(rate)*1e9) - time.Since(start); ahead > time.Millisecond {
				time.Sleep(ahead)
			}
		}
		if err := unix.Sendto(s.fd, payload, 0, &s.dst); err != nil {
			if err == unix.ENOBUFS || err == unix.EAGAIN {
				continue
			}
			b.Fatal(err)
		}
		sent++
	}
}

var adminRE = regexp.MustCompile(`admin=(127\.0\.0\.1:\d+)`)

// procCPU returns the user and system CPU time of pid (USER_HZ = 100).
func procCPU(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut) * 10 * time.Millisecond, time.Duration(st) * 10 * time.Millisecond
}

// procMem returns VmRSS and VmHWM of pid in KiB.
func procMem(pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// scrape returns the sum of every sample of metric name (all label sets).
func scrape(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}
