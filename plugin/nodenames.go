package plugin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	collectorv1 "github.com/cross-layer-telemetry/clt/api/collector/v1"
	"github.com/cross-layer-telemetry/clt/ioamstore"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// maxKnownNodes bounds the nodes NodeNames remembers from records (names and
// the routers GetServices lists); beyond it new nodes are counted, not kept.
const maxKnownNodes = 10000

// nodeLabelPrefix starts the fallback label of a node without a name.
const nodeLabelPrefix = "node "

// NodeKey is one IOAM node: a short (24-bit) id, or a wide (56-bit) one.
type NodeKey struct {
	ID   uint64
	Wide bool
}

// nodeStore is what NodeNames persists to; *ioamstore.Store implements it.
type nodeStore interface {
	WriteNodes(ctx context.Context, nodes []ioamstore.Node) error
	Nodes(ctx context.Context) ([]ioamstore.Node, error)
}

// NodeNames labels IOAM nodes for Jaeger's views. Names come from the
// configuration (`nodes:`, which wins) and from the reporter_node_name of
// records (learned, persisted in the store so a restart keeps them). It also
// remembers which nodes records mention: those are the routers listed as
// services. Safe for concurrent use; a nil *NodeNames gives the fallback
// labels.
type NodeNames struct {
	configured map[NodeKey]string

	mu      sync.RWMutex
	known   map[NodeKey]knownNode // nodes seen in records
	store   nodeStore
	refresh time.Duration // rewrite a known node this often
	now     func() time.Time
	onDrop  func() // a node not kept (limit)
	onError func(error)
}

type knownNode struct {
	name      string
	receiver  bool // seen after the first hop of a path
	persisted time.Time
}

// newNodeNames builds NodeNames from validated configuration; store may be
// nil (nothing persisted).
func newNodeNames(cfg map[string]string, store nodeStore, refresh time.Duration) *NodeNames {
	n := &NodeNames{configured: map[NodeKey]string{}, known: map[NodeKey]knownNode{}, store: store,
		refresh: refresh, now: time.Now, onDrop: func() {}, onError: func(error) {}}
	for k, v := range cfg {
		if key, err := ParseNodeKey(k); err == nil {
			n.configured[key] = v
		}
	}
	return n
}

// ParseNodeKey reads a node id as configured or shown: decimal is a short id
// (a decimal above 24 bits can only be a wide id), "0x" hex a wide id.
func ParseNodeKey(s string) (NodeKey, error) {
	v, err := ioam6.ParseNodeID(s)
	if err != nil {
		return NodeKey{}, err
	}
	hex := strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "0x")
	return NodeKey{ID: v, Wide: hex || v > maxNodeID}, nil
}

// Label is the node's name, else "node <id>" for a short id (decimal) or
// "node 0x<hex>" for a wide id: the service name of the node's network spans
// and its name in hop summaries.
func (n *NodeNames) Label(id uint64, wide bool) string {
	if n != nil {
		k := NodeKey{ID: id, Wide: wide}
		if name, ok := n.configured[k]; ok {
			return name
		}
		n.mu.RLock()
		name := n.known[k].name
		n.mu.RUnlock()
		if name != "" {
			return name
		}
	}
	return FallbackNodeLabel(id, wide)
}

// FallbackNodeLabel is the label of a node without a name.
func FallbackNodeLabel(id uint64, wide bool) string {
	if wide {
		return nodeLabelPrefix + ioam6.FormatWideID(id)
	}
	return nodeLabelPrefix + ioam6.FormatNodeID(uint32(id))
}

// Known returns the nodes records mention, short ids first, by id.
func (n *NodeNames) Known() []NodeKey {
	return n.knownNodes(false)
}

// Receivers returns the known nodes that received packets (appeared after
// the first hop of a path): the routers with network spans.
func (n *NodeNames) Receivers() []NodeKey {
	return n.knownNodes(true)
}

func (n *NodeNames) knownNodes(receiversOnly bool) []NodeKey {
	if n == nil {
		return nil
	}
	n.mu.RLock()
	keys := make([]NodeKey, 0, len(n.known))
	for k, v := range n.known {
		if v.receiver || !receiversOnly {
			keys = append(keys, k)
		}
	}
	n.mu.RUnlock()
	slices.SortFunc(keys, compareNodeKeys)
	return keys
}

func compareNodeKeys(a, b NodeKey) int {
	switch {
	case a.Wide != b.Wide:
		if a.Wide {
			return 1
		}
		return -1
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// Lookup returns the known nodes whose label is label (several when one
// router has a short and a wide id of the same name). A fallback label
// ("node 3", "node 0x…") names its node even before it is known.
func (n *NodeNames) Lookup(label string) []NodeKey {
	var out []NodeKey
	for _, k := range n.Known() {
		if n.Label(k.ID, k.Wide) == label {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		if rest, ok := strings.CutPrefix(label, nodeLabelPrefix); ok {
			if k, err := ParseNodeKey(rest); err == nil && FallbackNodeLabel(k.ID, k.Wide) == label {
				out = append(out, k)
			}
		}
	}
	return out
}

// Load reads the persisted nodes (at start).
func (n *NodeNames) Load(ctx context.Context) error {
	if n.store == nil {
		return nil
	}
	nodes, err := n.store.Nodes(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	for _, sn := range nodes {
		if len(n.known) >= maxKnownNodes {
			n.onDrop()
			continue
		}
		n.known[NodeKey{ID: sn.ID, Wide: sn.Wide}] = knownNode{name: sn.Name, receiver: sn.Receiver, persisted: now}
	}
	return nil
}

// Reset forgets every learned node (after a purge of the store).
func (n *NodeNames) Reset() {
	n.mu.Lock()
	clear(n.known)
	n.mu.Unlock()
}

// Observe learns the nodes of stored records and the reporters' names, and
// persists what changed (new node, new name, or an entry due for refresh
// before its TTL). A reporter's name belongs to its own entry, the last hop
// when it wrote one, else to its short node id.
func (n *NodeNames) Observe(ctx context.Context, recs []*collectorv1.IOAMRecord) {
	if n == nil {
		return
	}
	type seen struct {
		key      NodeKey
		name     string
		receiver bool
	}
	var all []seen
	for _, r := range recs {
		name := r.GetReporterNodeName()
		hops := r.GetHops()
		for i, h := range hops {
			own := ""
			if r.GetReporterWrote() && i == len(hops)-1 {
				own = name
			}
			f := ioam6.TraceType(h.GetFields())
			if f == 0 {
				f = ioam6.TraceType(r.GetTraceType())
			}
			if f&ioam6.BitHopLimitNodeID != 0 && ioam6.NodeIDAvailable(h.GetNodeId()) {
				all = append(all, seen{NodeKey{ID: uint64(h.GetNodeId())}, own, i > 0})
			}
			if f&ioam6.BitWideHopLimitNodeID != 0 && ioam6.WideNodeIDAvailable(h.GetWideNodeId()) {
				all = append(all, seen{NodeKey{ID: h.GetWideNodeId(), Wide: true}, own, i > 0})
			}
		}
		// The reporter saw the packet, so it received it (unless it is the
		// only hop: a sender reporting its own entry).
		if ioam6.TraceType(r.GetTraceType())&ioam6.BitHopLimitNodeID != 0 && ioam6.NodeIDAvailable(r.GetReporterNodeId()) {
			all = append(all, seen{NodeKey{ID: uint64(r.GetReporterNodeId())}, name, len(hops) > 1 || !r.GetReporterWrote()})
		}
	}
	if len(all) == 0 {
		return
	}
	now := n.now()
	var write []ioamstore.Node
	n.mu.Lock()
	for _, s := range all {
		cur, ok := n.known[s.key]
		name, receiver := cur.name, cur.receiver || s.receiver
		if s.name != "" {
			name = s.name
		}
		switch {
		case !ok && len(n.known) >= maxKnownNodes:
			n.onDrop()
			continue
		case ok && name == cur.name && receiver == cur.receiver && now.Sub(cur.persisted) < n.refresh:
			continue
		}
		n.known[s.key] = knownNode{name: name, receiver: receiver, persisted: now}
		write = append(write, ioamstore.Node{ID: s.key.ID, Wide: s.key.Wide, Name: name, Receiver: receiver})
	}
	n.mu.Unlock()
	if len(write) > 0 && n.store != nil {
		if err := n.store.WriteNodes(ctx, write); err != nil {
			n.onError(err)
			// Not persisted: try again with the next record.
			n.mu.Lock()
			for _, w := range write {
				k := NodeKey{ID: w.ID, Wide: w.Wide}
				if cur, ok := n.known[k]; ok {
					cur.persisted = time.Time{}
					n.known[k] = cur
				}
			}
			n.mu.Unlock()
		}
	}
}

// validateNodes checks the `nodes:` configuration: every key a node id,
// every name a valid node name, no node named twice.
func validateNodes(nodes map[string]string) []error {
	var errs []error
	keys := slices.Sorted(maps.Keys(nodes))
	seen := map[NodeKey]string{}
	for _, k := range keys {
		key, err := ParseNodeKey(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: not a node id (decimal short id or 0x-hex wide id)", k))
			continue
		}
		if (!key.Wide && !ioam6.NodeIDAvailable(uint32(key.ID))) || (key.Wide && !ioam6.WideNodeIDAvailable(key.ID)) {
			errs = append(errs, fmt.Errorf("%q: the kernel's \"not available\" id names no node", k))
		}
		if prev, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("%q: same node as %q", k, prev))
		}
		seen[key] = k
		name := nodes[k]
		if name == "" {
			errs = append(errs, fmt.Errorf("%q: empty name", k))
		} else if err := checkNodeName(name); err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", k, err))
		}
	}
	return errs
}
