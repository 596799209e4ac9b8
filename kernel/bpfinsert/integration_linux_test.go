package bpfinsert

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
)

const port = 8080

// lab is client(c0) -> r1 -> server(s0) with IOAM namespace 123, an HTTP
// server in the server namespace and an ioam6_events recorder on r1.
type lab struct {
	topo   *netnstest.Topology
	client *netnstest.Node
	rec    *netnstest.Recorder
	url    string

	mu   sync.Mutex
	seen []seenReq // requests the server received
}

type seenReq struct {
	traceparent, remote string
}

func newLab(t testing.TB) *lab {
	t.Helper()
	netnstest.RequirePrivileged(t)
	topo := netnstest.Build(t, netnstest.Chain(netnstest.ChainOptions{Routers: 1, IOAMNamespace: 123}))
	l := &lab{topo: topo, client: topo.Node("client")}
	srv := topo.Node("server")
	addr := srv.Addr("s0")
	ln, err := srv.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		_, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, hex.EncodeToString(h.Sum(nil)))
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = io.Copy(w, io.LimitReader(&pattern{}, int64(n)))
	})
	mux.HandleFunc("/bench", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.seen = append(l.seen, seenReq{r.Header.Get("traceparent"), r.RemoteAddr})
		l.mu.Unlock()
		fmt.Fprintln(w, "ok")
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); <-done })
	rec, err := topo.Node("r1").Record(ioam6.CarrierConfig{})
	require.NoError(t, err)
	l.rec = rec
	l.url = "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(port))
	return l
}

// pattern is a deterministic byte stream, whatever the read sizes.
type pattern struct{ off uint64 }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		o := p.off + uint64(i)
		b[i] = byte(o*7 + o>>11)
	}
	p.off += uint64(len(b))
	return len(b), nil
}

func (l *lab) attach(t testing.TB, cfg Config) *Inserter {
	t.Helper()
	var in *Inserter
	require.NoError(t, l.client.Do(func() (err error) { in, err = New(cfg, nil); return err }))
	t.Cleanup(func() { _ = in.Close() })
	return in
}

func labConfig() Config {
	c := DefaultConfig()
	c.Interfaces = []string{"c0"}
	c.Prefixes = []string{"fd00:2::/64"}
	c.Ports = []uint16{port}
	return c
}

func traceparent(i int, flags string) (string, ioam6.IDs) {
	var ids ioam6.IDs
	for k := range ids.TraceID {
		ids.TraceID[k] = byte(0x40 + i)
	}
	ids.TraceID[0] = 0x0a
	for k := range ids.SpanID {
		ids.SpanID[k] = byte(0x80 + i)
	}
	return "00-" + hex.EncodeToString(ids.TraceID[:]) + "-" + hex.EncodeToString(ids.SpanID[:]) + "-" + flags, ids
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv(netnstest.EnvRequirePrivileged) == "1" {
			t.Fatalf("%s not installed (make integration-deps)", name)
		}
		t.Skipf("%s not installed (make integration-deps)", name)
	}
}

// attachedPrograms counts the tcx programs on a client interface.
func attachedPrograms(t *testing.T, n *netnstest.Node, ifname string) int {
	t.Helper()
	total := 0
	require.NoError(t, n.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		for _, at := range []ebpf.AttachType{ebpf.AttachTCXEgress, ebpf.AttachTCXIngress} {
			r, err := link.QueryPrograms(link.QueryOptions{Target: ifi.Index, Attach: at})
			if err != nil {
				return err
			}
			total += len(r.Programs)
		}
		return nil
	}))
	return total
}

// Non-Go clients, no code change: curl, and Python's http.client with four
// requests on one keep-alive connection (sampled, unsampled, sampled, none).
// r1's IOAM events carry exactly the sampled requests' IDs, in request
// order, with the client's own entry; each tagged packet is one event.
func TestIntegrationNonGoClients(t *testing.T) {
	requireTool(t, "curl")
	requireTool(t, "python3")
	l := newLab(t)
	in := l.attach(t, labConfig())
	assert.Equal(t, 2, attachedPrograms(t, l.client, "c0"))

	tpCurl, idsCurl := traceparent(1, "01")
	out, err := l.client.Command("curl", "-sS", "-m", "10", "-H", "traceparent: "+tpCurl, l.url+"/curl").CombinedOutput()
	require.NoError(t, err, "curl: %s", out)
	curlDone := time.Now()

	tp2, ids2 := traceparent(2, "01")
	tp3, ids3 := traceparent(3, "00") // unsampled
	tp4, ids4 := traceparent(4, "01")
	script := `
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], ` + strconv.Itoa(port) + `, timeout=10)
for i, tp in enumerate(sys.argv[2:] + [""]):
    h = {"traceparent": tp} if tp else {}
    c.request("GET", "/py%d" % i, headers=h)
    r = c.getresponse()
    assert r.status == 200, r.status
    r.read()
c.close()
`
	out, err = l.client.Command("python3", "-c", script, l.topo.Node("server").Addr("s0").String(), tp2, tp3, tp4).CombinedOutput()
	require.NoError(t, err, "python: %s", out)

	l.mu.Lock()
	seen := append([]seenReq(nil), l.seen...)
	l.mu.Unlock()
	require.Len(t, seen, 5)
	assert.Equal(t, tpCurl, seen[0].traceparent)
	for _, s := range seen[2:] {
		assert.Equal(t, seen[1].remote, s.remote, "python's requests share one connection")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := map[ioam6.IDs]bool{idsCurl: true, ids2: true, ids4: true}
	evs, ok := l.rec.WaitFor(ctx, func(evs []netnstest.Event) bool {
		got := map[ioam6.IDs]bool{}
		for _, e := range evs {
			got[e.IDs] = true
		}
		return len(got) >= len(want) && got[idsCurl] && got[ids2] && got[ids4]
	})
	require.True(t, ok, "events for every sampled request; got %d events", len(evs))
	time.Sleep(300 * time.Millisecond) // the last ACKs and FINs
	evs = l.rec.Events()

	order := []ioam6.IDs{}
	for _, e := range evs {
		require.NoError(t, e.Err)
		require.True(t, e.HasIDs)
		assert.True(t, want[e.IDs], "only sampled requests' IDs: %x", e.IDs.SpanID)
		assert.NotEqual(t, ids3, e.IDs, "unsampled request not tagged")
		require.Len(t, e.Nodes, 2, "the client's own entry and r1's")
		assert.EqualValues(t, 1, e.Nodes[0].NodeID, "own entry: client node id")
		assert.EqualValues(t, 10, e.Nodes[0].EgressIf, "own entry: c0's ioam6_id")
		assert.EqualValues(t, 0xffff, e.Nodes[0].IngressIf)
		assert.EqualValues(t, 2, e.Nodes[1].NodeID, "r1")
		if len(order) == 0 || order[len(order)-1] != e.IDs {
			order = append(order, e.IDs)
		}
	}
	assert.Equal(t, []ioam6.IDs{idsCurl, ids2, ids4}, order, "each request's packets carry its own IDs, in order")
	_ = curlDone

	st, err := in.Stats()
	require.NoError(t, err)
	assert.EqualValues(t, 5, st.RequestsParsed)
	assert.EqualValues(t, 1, st.TraceparentUnsampled)
	assert.EqualValues(t, 1, st.TraceparentMissing)
	assert.EqualValues(t, len(evs), st.PacketsTagged, "every tagged packet reached r1 as one IOAM event")
	assert.Positive(t, st.SkipNoState, "packets of untagged requests")
	assert.EqualValues(t, 2, st.MSSClamped, "one SYN-ACK per connection")
	assert.Zero(t, st.ErrAdjust+st.ErrConfig+st.SkipTooBig)
	hl, err := labConfig().spec(ioam6.Node{}).Len()
	require.NoError(t, err)
	assert.EqualValues(t, uint64(hl)*st.PacketsTagged, st.BytesAdded, "no GSO packet here: one header per packet")

	// Detach: nothing left on the interface, traffic flows untagged.
	require.NoError(t, in.Close())
	require.NoError(t, in.Close(), "idempotent")
	assert.Zero(t, attachedPrograms(t, l.client, "c0"))
	n := len(l.rec.Events())
	tp5, _ := traceparent(5, "01")
	out, err = l.client.Command("curl", "-sS", "-m", "10", "-H", "traceparent: "+tp5, l.url+"/after").CombinedOutput()
	require.NoError(t, err, "curl after detach: %s", out)
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, l.rec.Events(), n, "no IOAM after detach")
}

// Bulk through the tagged path, GSO on and off: 20 MB up and down arrive
// intact in bounded time, tagged, with few retransmissions.
func TestIntegrationBulk(t *testing.T) {
	l := newLab(t)
	enableStats(t)
	for _, tc := range []struct {
		gso, clamp, plain bool
	}{{true, true, false}, {true, false, false}, {false, true, false}, {false, false, true}} {
		gso := tc.gso
		t.Run(fmt.Sprintf("gso=%v,clamp_mss=%v,plain=%v", gso, tc.clamp, tc.plain), func(t *testing.T) {
			if !gso && !tc.plain {
				requireTool(t, "ethtool")
				out, err := l.client.Command("ethtool", "-K", "c0", "gso", "off", "tso", "off").CombinedOutput()
				require.NoError(t, err, "ethtool: %s", out)
			}
			var in *Inserter
			if !tc.plain { // the plain run is the baseline the log lines compare with
				cfg := labConfig()
				cfg.ClampMSS = tc.clamp
				in = l.attach(t, cfg)
				defer in.Close()
			}
			tp, _ := traceparent(7, "01")
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return l.client.DialContext(ctx, nil, network, addr)
			}}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			txb0, txp0 := txStats(t, l.client, "c0")
			retrans0 := retransSegs(t, l.client)
			dsack0 := netstat(t, l.client, "netstat", "TcpExt:", "TCPDSACKRecv")
			why0 := retransCauses(t, l.client)
			ofo0 := netstat(t, l.topo.Node("server"), "netstat", "TcpExt:", "TCPOFOQueue")
			const size = 20 << 20
			start := time.Now()

			h := sha256.New()
			req, err := http.NewRequest("POST", l.url+"/upload", io.TeeReader(io.LimitReader(&pattern{}, size), h))
			require.NoError(t, err)
			req.Header.Set("traceparent", tp)
			resp, err := hc.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, hex.EncodeToString(h.Sum(nil)), string(body), "upload checksum")
			upRetrans := retransSegs(t, l.client) - retrans0
			txb, txp := txStats(t, l.client, "c0")
			if !gso {
				// Segmented at the device, so counted per wire packet: with the
				// clamp the segments stay full size (gso_size kept), without it
				// they shrink by the header.
				avg := float64(txb-txb0) / float64(txp-txp0)
				t.Logf("upload: mean packet %.0f B on c0", avg)
				if tc.clamp && !tc.plain {
					assert.Greater(t, avg, 1400.0, "full-size tagged segments")
				}
			}

			req, err = http.NewRequest("GET", l.url+"/download?n="+strconv.Itoa(size), nil)
			require.NoError(t, err)
			req.Header.Set("traceparent", tp)
			resp, err = hc.Do(req)
			require.NoError(t, err)
			got := sha256.New()
			n, err := io.Copy(got, resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.EqualValues(t, size, n)
			want := sha256.New()
			_, _ = io.Copy(want, io.LimitReader(&pattern{}, size))
			assert.Equal(t, want.Sum(nil), got.Sum(nil), "download checksum")
			elapsed := time.Since(start)
			retrans := retransSegs(t, l.client) - retrans0
			dsack := netstat(t, l.client, "netstat", "TcpExt:", "TCPDSACKRecv") - dsack0
			why := retransCauses(t, l.client)
			for k := range why {
				why[k] -= why0[k]
			}
			t.Logf("retransmission causes (client TcpExt): %v; server out-of-order segments queued %d", why,
				netstat(t, l.topo.Node("server"), "netstat", "TcpExt:", "TCPOFOQueue")-ofo0)

			assert.Less(t, elapsed, 30*time.Second)
			if tc.plain {
				t.Logf("plain gso=%v: 2×20 MB in %v, retransmitted %d (%d during the upload, D-SACKed %d)", gso, elapsed, retrans, upRetrans, dsack)
				return
			}
			st, err := in.Stats()
			require.NoError(t, err)
			if ps, err := in.coll.Programs["clt_egress"].Stats(); err == nil && ps.RunCount > 0 {
				t.Logf("egress program: %d runs, %.0f ns/run (kernel.bpf_stats_enabled or BPF_ENABLE_STATS on)", ps.RunCount,
					float64(ps.Runtime.Nanoseconds())/float64(ps.RunCount))
			}
			t.Logf("gso=%v: 2×20 MB in %v, retransmitted %d (%d during the upload, D-SACKed %d), stats %+v", gso, elapsed, retrans, upRetrans, dsack, st)
			// A storm is the full-size segment that never fits, retransmitted
			// forever (the transfer then never completes). Measured instead:
			// tens of retransmissions in some runs, tagged and plain, all fast
			// retransmits after reordering (the server's out-of-order queue
			// moved) or tail loss probes, reported back as spurious (D-SACK),
			// never an RTO (the causes logged above; docs/benchmarks.md).
			// Allow 5% of the ~17000 upload segments.
			assert.Less(t, retrans, uint64(size/1200/20), "no retransmission storm")
			assert.Positive(t, st.PacketsTagged)
			assert.Zero(t, st.ErrAdjust)
			if tc.clamp {
				assert.Zero(t, st.SkipTooBig, "clamped MSS: every segment fits")
				assert.EqualValues(t, 1, st.MSSClamped)
			} else {
				// Without the clamp, single full-MSS (non-GSO) segments, when
				// TCP sends some, would not fit: they go out untagged instead
				// of being dropped (TestIntegrationProgramTooBig), so the
				// transfer above completed.
				assert.Zero(t, st.MSSClamped)
			}
		})
	}
}

// retransCauses reads the client's TcpExt counters that tell why TCP
// retransmitted: RTO, tail loss probe, fast retransmit, and whether the
// retransmission was spurious (D-SACK, Eifel/F-RTO) or happened while the
// original still sat in the host's queues.
func retransCauses(t *testing.T, n *netnstest.Node) map[string]uint64 {
	m := map[string]uint64{}
	for _, k := range []string{"TCPTimeouts", "TCPLossProbes", "TCPFastRetrans", "TCPSpuriousRTOs",
		"TCPSpuriousRtxHostQueues", "TCPDSACKRecvSegs", "TCPLostRetransmit", "TCPRetransFail", "TCPSACKReorder", "TCPTSReorder"} {
		m[k] = netstat(t, n, "netstat", "TcpExt:", k)
	}
	return m
}

// retransSegs reads Tcp RetransSegs of the node's namespace.
func retransSegs(t *testing.T, n *netnstest.Node) uint64 {
	return netstat(t, n, "snmp", "Tcp:", "RetransSegs")
}

// netstat reads one counter of /proc/net/<file> (header line, value line
// per section) in the node's namespace.
func netstat(t *testing.T, n *netnstest.Node, file, section, key string) uint64 {
	t.Helper()
	var v uint64
	require.NoError(t, n.Do(func() error {
		f, err := os.Open("/proc/thread-self/net/" + file)
		if err != nil {
			return err
		}
		defer f.Close()
		var names []string
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 0 || fs[0] != section {
				continue
			}
			if names == nil {
				names = fs
				continue
			}
			for i, name := range names {
				if name == key && i < len(fs) {
					v, err = strconv.ParseUint(fs[i], 10, 64)
					return err
				}
			}
			return fmt.Errorf("no %s %s", section, key)
		}
		return fmt.Errorf("no %s in %s", section, file)
	}))
	return v
}

// A crashed owner leaves nothing attached: the kernel releases tcx links
// with the process's file descriptors.
func TestIntegrationCrashLeavesNothing(t *testing.T) {
	l := newLab(t)
	cmd := l.client.Command(os.Args[0], "-test.run=^TestHelperAttach$", "-test.v")
	cmd.Env = append(os.Environ(), "CLT_BPFINSERT_HELPER=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "attached") {
			ready = true
			break
		}
	}
	require.True(t, ready, "helper attached")
	assert.Equal(t, 2, attachedPrograms(t, l.client, "c0"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for attachedPrograms(t, l.client, "c0") != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Zero(t, attachedPrograms(t, l.client, "c0"), "nothing left after SIGKILL")
	// and a new owner attaches again
	in := l.attach(t, labConfig())
	assert.Equal(t, 2, attachedPrograms(t, l.client, "c0"))
	require.NoError(t, in.Close())
}

// TestHelperAttach is the process TestIntegrationCrashLeavesNothing kills.
func TestHelperAttach(t *testing.T) {
	if os.Getenv("CLT_BPFINSERT_HELPER") != "1" {
		t.Skip("helper process only")
	}
	in, err := New(labConfig(), nil)
	require.NoError(t, err)
	defer in.Close()
	fmt.Println("attached")
	time.Sleep(30 * time.Second)
}

// The Prometheus collector reports the map's counters.
func TestIntegrationCollector(t *testing.T) {
	in := loadForTest(t, testConfig())
	run(t, in, packet(testDst, 8080, tcpPSH|tcpACK, request("traceparent: 00-"+tid+"-"+sid+"-01")))
	run(t, in, packet(testDst, 8080, tcpPSH|tcpACK, request("")))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(in.Collector("clt_agent")))
	got, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	assert.Equal(t, 19, got)
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP clt_agent_insert_packets_tagged_total Packets given the IOAM Hop-by-Hop header by the eBPF program (a GSO packet counts once).
# TYPE clt_agent_insert_packets_tagged_total counter
clt_agent_insert_packets_tagged_total 1
# HELP clt_agent_insert_requests_untagged_total Requests not tagged, by reason (traceparent missing, invalid or unsampled; rate limited).
# TYPE clt_agent_insert_requests_untagged_total counter
clt_agent_insert_requests_untagged_total{result="invalid"} 0
clt_agent_insert_requests_untagged_total{result="missing"} 1
clt_agent_insert_requests_untagged_total{result="rate_limited"} 0
clt_agent_insert_requests_untagged_total{result="unsampled"} 0
`), "clt_agent_insert_packets_tagged_total", "clt_agent_insert_requests_untagged_total"))
}

// The per-socket map API: IDs set for a socket's cookie (SO_COOKIE) tag its
// packets whatever the protocol (here opaque bytes, as TLS would be);
// ClearSocket stops it.
func TestIntegrationSetSocket(t *testing.T) {
	l := newLab(t)
	in := l.attach(t, labConfig())
	srv := l.topo.Node("server")
	ln, err := srv.Listen("tcp", net.JoinHostPort(srv.Addr("s0").String(), "8443"))
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	conn, err := l.client.DialContext(t.Context(), nil, "tcp", net.JoinHostPort(srv.Addr("s0").String(), "8443"))
	require.NoError(t, err)
	defer conn.Close()
	var cookie uint64
	rc, err := conn.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	require.NoError(t, rc.Control(func(fd uintptr) {
		cookie, err = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}))
	require.NoError(t, err)
	_, ids := traceparent(20, "01")
	require.NoError(t, in.SetSocket(cookie, ids))

	// Port 8443 is not configured: untouched whatever the map says.
	_, err = conn.Write([]byte("\x16\x03\x01 opaque"))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, l.rec.Events(), "unconfigured port not tagged")
	st, err := in.Stats()
	require.NoError(t, err)
	assert.Positive(t, st.SkipUnconfigured)
	require.NoError(t, in.Close())

	// Now with the port configured (a fresh inserter, same socket).
	cfg := labConfig()
	cfg.Ports = []uint16{port, 8443}
	in = l.attach(t, cfg)
	require.NoError(t, in.SetSocket(cookie, ids))
	_, err = conn.Write([]byte("\x16\x03\x01 more opaque bytes"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, ok := l.rec.WaitFor(ctx, func(evs []netnstest.Event) bool { return len(evs) > 0 })
	require.True(t, ok, "tagged through the map API")
	for _, e := range evs {
		assert.Equal(t, ids, e.IDs)
	}
	require.NoError(t, in.ClearSocket(cookie))
	require.NoError(t, in.ClearSocket(cookie), "clearing twice is fine")
	time.Sleep(100 * time.Millisecond)
	n := len(l.rec.Events())
	_, err = conn.Write([]byte("after clear"))
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, l.rec.Events(), n, "cleared socket not tagged")
}

// txStats reads an interface's transmit byte and packet counters in a node.
func txStats(t *testing.T, n *netnstest.Node, ifname string) (bytes, packets uint64) {
	t.Helper()
	read := func(name string) uint64 {
		out, err := n.Command("cat", "/sys/class/net/"+ifname+"/statistics/"+name).Output()
		require.NoError(t, err)
		v, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
		require.NoError(t, err)
		return v
	}
	return read("tx_bytes"), read("tx_packets")
}
