package agent

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cross-layer-telemetry/clt/kernel/bpfinsert"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/netnstest"
	"github.com/cross-layer-telemetry/clt/plugin"
)

const itHTTPPort = 8080

func itTraceparent(i int, flags string) (string, ioam6.IDs) {
	ids := itIDs(9, i)
	return "00-" + hex.EncodeToString(ids.TraceID[:]) + "-" + hex.EncodeToString(ids.SpanID[:]) + "-" + flags, ids
}

// tcxPrograms counts the tcx programs on an interface of a node.
func tcxPrograms(t *testing.T, n *netnstest.Node, ifname string) int {
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

// TestIntegrationInsertNonGoClients: a clt-agent with an insert block on the
// sending host, agents on r1, r2 and the server, a real clt-storage.
// Requests from curl and from Python's http.client (three traceparents on
// one keep-alive connection) come back from clt-storage joined to exactly
// their own span IDs, over the whole path; the unsampled one has no hops.
func TestIntegrationInsertNonGoClients(t *testing.T) {
	for _, tool := range []string{"curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv(netnstest.EnvRequirePrivileged) == "1" {
				t.Fatalf("%s not installed (make integration-deps)", tool)
			}
			t.Skipf("%s not installed (make integration-deps)", tool)
		}
	}
	topo := chain(t)
	server := topo.Node("server")
	ln, err := server.Listen("tcp", net.JoinHostPort(server.Addr("s0").String(), strconv.Itoa(itHTTPPort)))
	require.NoError(t, err)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }),
		ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); <-done })

	st := startStorage(t)
	agents := startAgents(t, topo, st.collector, nil)
	client := topo.Node("client")
	sender := startAgentsOn(t, topo, []string{"client"}, st.collector, func(c *Config) {
		ins := bpfinsert.DefaultConfig()
		ins.Interfaces = []string{"c0"}
		ins.Prefixes = []string{"fd00:3::/64"}
		ins.Ports = []uint16{itHTTPPort}
		ins.Namespace = itNamespace
		c.Insert = &ins
	})["client"]
	assert.Equal(t, 2, tcxPrograms(t, client, "c0"), "egress tagging and ingress MSS clamp attached")

	url := "http://" + net.JoinHostPort(server.Addr("s0").String(), strconv.Itoa(itHTTPPort))
	tpCurl, idsCurl := itTraceparent(0, "01")
	out, err := client.Command("curl", "-sS", "-m", "10", "-H", "traceparent: "+tpCurl, url+"/curl").CombinedOutput()
	require.NoError(t, err, "curl: %s", out)
	tp1, ids1 := itTraceparent(1, "01")
	tp2, ids2 := itTraceparent(2, "00")
	tp3, ids3 := itTraceparent(3, "01")
	script := `
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], ` + strconv.Itoa(itHTTPPort) + `, timeout=10)
for i, tp in enumerate(sys.argv[2:]):
    c.request("GET", "/py%d" % i, headers={"traceparent": tp})
    r = c.getresponse()
    assert r.status == 200, r.status
    r.read()
c.close()
`
	out, err = client.Command("python3", "-c", script, server.Addr("s0").String(), tp1, tp2, tp3).CombinedOutput()
	require.NoError(t, err, "python: %s", out)

	gathered, err := sender.Metrics().Registry.Gather()
	require.NoError(t, err)
	var tagged float64
	for _, mf := range gathered {
		if mf.GetName() == "clt_agent_insert_packets_tagged_total" {
			tagged = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	assert.Positive(t, tagged, "clt_agent_insert_packets_tagged_total")

	waitDecoded(t, agents, 6) // at least the two curl/python requests' packets
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, sender.Close())
	assert.Zero(t, tcxPrograms(t, client, "c0"), "nothing attached after the agent stops")
	closeAgents(t, agents)

	all := []ioam6.IDs{idsCurl, ids1, ids2, ids3}
	st.writeSpans(all)
	for _, id := range []ioam6.IDs{idsCurl, ids1, ids3} {
		sp := st.span(id)
		require.NotNil(t, sp, "span %x", id.SpanID)
		assert.Equal(t, "1 > 2 > 3 > 4", attr(sp, plugin.AttrPath).GetStringValue(), "span %x: client's own entry, r1, r2, server", id.SpanID)
		assert.Positive(t, attr(sp, plugin.AttrPackets).GetIntValue(), "span %x packets", id.SpanID)
	}
	sp := st.span(ids2)
	require.NotNil(t, sp)
	assert.Nil(t, attr(sp, plugin.AttrPath), "unsampled request not tagged")
	for role, a := range agents {
		assert.Positive(t, testutil.ToFloat64(a.Metrics().RecordsExported), role)
	}
}
