package plugin

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/ioamstore"
)

// fakeNodeStore records WriteNodes calls.
type fakeNodeStore struct {
	nodes     map[NodeKey]string
	receivers []NodeKey
	writes    int
	err       error
}

func (f *fakeNodeStore) WriteNodes(_ context.Context, nodes []ioamstore.Node) error {
	f.writes++
	if f.err != nil {
		return f.err
	}
	for _, n := range nodes {
		f.nodes[NodeKey{ID: n.ID, Wide: n.Wide}] = n.Name
		if n.Receiver {
			f.receivers = append(f.receivers, NodeKey{ID: n.ID, Wide: n.Wide})
		}
	}
	return nil
}

func (f *fakeNodeStore) Nodes(context.Context) ([]ioamstore.Node, error) {
	var out []ioamstore.Node
	for k, v := range f.nodes {
		out = append(out, ioamstore.Node{ID: k.ID, Wide: k.Wide, Name: v, Receiver: slices.Contains(f.receivers, k)})
	}
	return out, nil
}

func TestNodeLabelFallback(t *testing.T) {
	var n *NodeNames
	assert.Equal(t, "node 3", n.Label(3, false))
	assert.Equal(t, "node 0xa1b2c3d4e5f6", n.Label(0xa1b2c3d4e5f6, true))
	assert.Equal(t, "node 0x3", n.Label(3, true), "a wide id is hex even when small")
	assert.Empty(t, n.Known())
}

func TestParseNodeKey(t *testing.T) {
	for in, want := range map[string]NodeKey{
		"3": {ID: 3}, " 16777214 ": {ID: 0xfffffe}, "16777216": {ID: 1 << 24, Wide: true},
		"0x3": {ID: 3, Wide: true}, "0XA1B2": {ID: 0xa1b2, Wide: true},
	} {
		got, err := ParseNodeKey(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "-1", "0x100000000000000"} {
		_, err := ParseNodeKey(in)
		assert.Error(t, err, in)
	}
}

// wideRec is a record of a wide-only trace type whose hops are ids.
func wideRec(name string, ids ...uint64) *collectorv1.IOAMRecord {
	r := &collectorv1.IOAMRecord{TraceType: 0x008000, ReporterWrote: true, ReporterNodeId: 0xffffff, ReporterNodeName: name}
	for _, id := range ids {
		r.Hops = append(r.Hops, &collectorv1.Hop{Fields: 0x008000, WideNodeId: id})
	}
	return r
}

func TestNodeNamesLearnAndConfigure(t *testing.T) {
	st := &fakeNodeStore{nodes: map[NodeKey]string{}}
	n := newNodeNames(map[string]string{"2": "porthos-cfg"}, st, time.Hour)
	clock := time.Unix(1800000000, 0)
	n.now = func() time.Time { return clock }
	ctx := t.Context()

	// The reporter names its own entry: the last hop.
	a := rec(3, 0, 1, 2, 3)
	a.ReporterNodeName = "aramis"
	n.Observe(ctx, []*collectorv1.IOAMRecord{a})
	assert.Equal(t, "aramis", n.Label(3, false))
	assert.Equal(t, "porthos-cfg", n.Label(2, false), "configured names win")
	assert.Equal(t, "node 1", n.Label(1, false), "a node without agent and name")
	assert.Equal(t, []NodeKey{{ID: 1}, {ID: 2}, {ID: 3}}, n.Known(), "every node of the path has records")
	assert.Equal(t, []NodeKey{{ID: 2}, {ID: 3}}, n.Receivers(), "hop 0 only sent")
	assert.Equal(t, map[NodeKey]string{{ID: 1}: "", {ID: 2}: "", {ID: 3}: "aramis"}, st.nodes, "persisted")

	// Overflowed before the reporter: its name goes to reporter_node_id.
	b := rec(9, 0, 1, 2)
	b.ReporterWrote, b.Overflow, b.ReporterNodeName = false, true, "dartagnan"
	n.Observe(ctx, []*collectorv1.IOAMRecord{b})
	assert.Equal(t, "dartagnan", n.Label(9, false))
	assert.Equal(t, "node 0x2", n.Label(2, true), "short and wide ids are different keys")

	// Wide-only: the name belongs to the wide id, the unavailable short
	// reporter id names nothing.
	n.Observe(ctx, []*collectorv1.IOAMRecord{wideRec("athos-w", 0xa1, 0xa1b2c3d4e5f6)})
	assert.Equal(t, "athos-w", n.Label(0xa1b2c3d4e5f6, true))
	assert.Equal(t, "node 0xa1", n.Label(0xa1, true))
	assert.NotContains(t, n.Known(), NodeKey{ID: 0xffffff})

	// Unchanged nodes are not rewritten until the refresh is due.
	writes := st.writes
	n.Observe(ctx, []*collectorv1.IOAMRecord{a})
	assert.Equal(t, writes, st.writes)
	clock = clock.Add(2 * time.Hour)
	n.Observe(ctx, []*collectorv1.IOAMRecord{a})
	assert.Equal(t, writes+1, st.writes)

	// Lookup: by name, and by a fallback label.
	assert.Equal(t, []NodeKey{{ID: 3}}, n.Lookup("aramis"))
	assert.Equal(t, []NodeKey{{ID: 1}}, n.Lookup("node 1"))
	assert.Equal(t, []NodeKey{{ID: 0xa1, Wide: true}}, n.Lookup("node 0xa1"))
	assert.Empty(t, n.Lookup("nobody"))

	// A restart reads what was learned.
	again := newNodeNames(nil, st, time.Hour)
	require.NoError(t, again.Load(ctx))
	assert.Equal(t, "aramis", again.Label(3, false))
	assert.Equal(t, "athos-w", again.Label(0xa1b2c3d4e5f6, true))
	assert.Equal(t, n.Receivers(), again.Receivers())

	n.Reset()
	assert.Empty(t, n.Known())
	assert.Equal(t, "porthos-cfg", n.Label(2, false), "configuration survives a purge")
}

func TestNodeNamesWriteErrorRetried(t *testing.T) {
	st := &fakeNodeStore{nodes: map[NodeKey]string{}, err: errors.New("disk full")}
	n := newNodeNames(nil, st, time.Hour)
	var errs int
	n.onError = func(error) { errs++ }
	r := rec(3, 0, 3)
	r.ReporterNodeName = "aramis"
	n.Observe(t.Context(), []*collectorv1.IOAMRecord{r})
	assert.Equal(t, 1, errs)
	assert.Equal(t, "aramis", n.Label(3, false), "known in memory anyway")
	st.err = nil
	n.Observe(t.Context(), []*collectorv1.IOAMRecord{r})
	assert.Equal(t, "aramis", st.nodes[NodeKey{ID: 3}], "written with the next record")
}

func TestNodeNamesBounded(t *testing.T) {
	n := newNodeNames(nil, nil, time.Hour)
	var dropped int
	n.onDrop = func() { dropped++ }
	var recs []*collectorv1.IOAMRecord
	for i := range maxKnownNodes + 5 {
		recs = append(recs, wideRec("", uint64(i+1)))
	}
	n.Observe(t.Context(), recs)
	assert.Len(t, n.Known(), maxKnownNodes)
	assert.Equal(t, 5, dropped)
}

func TestConfigNodes(t *testing.T) {
	cfg, err := ParseConfig([]byte("nodes:\n  1: athos\n  0xa1b2c3d4e5f6: aramis\n  \"16777216\": big\n"))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	n := newNodeNames(cfg.Nodes, nil, time.Hour)
	assert.Equal(t, "athos", n.Label(1, false))
	assert.Equal(t, "aramis", n.Label(0xa1b2c3d4e5f6, true), "an unquoted 0x key keeps its text")
	assert.Equal(t, "big", n.Label(1<<24, true))

	cfg.Nodes = map[string]string{"x": "a", "3": "", "16777215": "none", "0x3": "ok", "0x03": "dup", "4": " pad"}
	err = cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{`nodes: "x": not a node id`, `nodes: "3": empty name`, `nodes: "16777215": the kernel's "not available" id`,
		`nodes: "0x3": same node as "0x03"`, `nodes: "4": " pad" has leading or trailing space`} {
		assert.Contains(t, err.Error(), want)
	}
}

// Names reported by agents survive a restart of clt-storage on the same
// badger directory.
func TestNodeNamesPersistAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *Server {
		cfg := testConfig(t)
		cfg.Store.Dir = dir
		srv, err := New(cfg, Settings{})
		require.NoError(t, err)
		require.NoError(t, srv.Start(t.Context()))
		return srv
	}
	srv := start()
	r := rec(3, 0, 1, 3)
	r.TraceId, r.SpanId = tid(1), sid(1)
	r.ReporterNodeName = "aramis"
	col := &collector{store: srv.store, cfg: srv.cfg.Collector, metrics: srv.metrics, logger: srv.logger, now: time.Now, names: srv.names}
	_, err := col.Report(t.Context(), &collectorv1.ReportRequest{AgentId: "a", Records: []*collectorv1.IOAMRecord{r}})
	require.NoError(t, err)
	assert.Equal(t, "aramis", srv.NodeNames().Label(3, false))
	require.NoError(t, srv.Close())

	srv = start()
	defer func() { require.NoError(t, srv.Close()) }()
	assert.Equal(t, "aramis", srv.NodeNames().Label(3, false))
	assert.Equal(t, []NodeKey{{ID: 1}, {ID: 3}}, srv.NodeNames().Known())
}
