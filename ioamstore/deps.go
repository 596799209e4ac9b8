package ioamstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// GetDependencies returns parent → child service call counts computed from
// the parent links of the traces with a span that started in [start, end]
// (zero = unbounded), loading at most Config.DependencyMaxTraces traces (an
// equal share per service, newest first).
// Calls within one service are not counted (as in Jaeger's stores). Sorted by
// parent, then child.
func (s *Store) GetDependencies(ctx context.Context, start, end time.Time) ([]Dependency, error) {
	return s.GetDependenciesRecorded(ctx, start, end, nil)
}

// GetDependenciesRecorded is GetDependencies that also hands fn every span
// of those traces with IOAM records (its service, its child spans' other
// services and its records), so the caller can draw the network between the
// services. fn runs inside the read transaction and must not call the
// Store; nil skips the records.
func (s *Store) GetDependenciesRecorded(ctx context.Context, start, end time.Time, fn func(RecordedSpan)) ([]Dependency, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	if err := s.acquireSearch(ctx); err != nil {
		return nil, err
	}
	defer s.releaseSearch()
	services, err := s.services()
	if err != nil {
		return nil, err
	}
	minNs, maxNs := timeNs(start), unboundedTimeNs
	if !end.IsZero() {
		maxNs = timeNs(end)
	}
	type edge struct{ parent, child string }
	counts := map[edge]uint64{}
	err = s.db.View(func(txn *badger.Txn) error {
		seen := map[[16]byte]struct{}{}
		var ids [][16]byte
		// Every service gets an equal share of the budget (its newest traces),
		// so one busy service cannot hide the others.
		perService := max(1, s.cfg.DependencyMaxTraces/max(1, len(services)))
		for _, svc := range services {
			c := &compiledQuery{q: Query{Service: svc}, startMin: minNs, startMax: maxNs}
			n := 0
			err := s.scanServiceIndex(ctx, txn, c, func(_ *badger.Txn, id [16]byte) (bool, error) {
				if _, ok := seen[id]; !ok {
					seen[id] = struct{}{}
					ids = append(ids, id)
					n++
				}
				return n >= perService, nil
			})
			if err != nil {
				return err
			}
		}
		for _, id := range ids {
			spanSvc := map[[8]byte]string{}
			type link struct {
				parent [8]byte
				svc    string
			}
			var links []link
			// A span stored twice (a client's re-batched retry: the read
			// path serves it once) is one call, not two.
			type call struct {
				span, parent [8]byte
				svc          string
			}
			calls := map[call]struct{}{}
			err := s.readTraceRaw(ctx, txn, id, func(payload []byte) error {
				return walkSpanLinks(payload, func(svc string, spanID, parentID []byte) {
					if len(spanID) == spanIDLen {
						spanSvc[[8]byte(spanID)] = svc
					}
					if len(parentID) != spanIDLen {
						return
					}
					if len(spanID) == spanIDLen {
						c := call{[8]byte(spanID), [8]byte(parentID), svc}
						if _, dup := calls[c]; dup {
							return
						}
						calls[c] = struct{}{}
					}
					links = append(links, link{[8]byte(parentID), svc})
				})
			})
			if err != nil {
				return err
			}
			children := map[[8]byte][]string{}
			for _, l := range links {
				if p, ok := spanSvc[l.parent]; ok && p != l.svc {
					counts[edge{p, l.svc}]++
					children[l.parent] = append(children[l.parent], l.svc)
				}
			}
			if fn == nil {
				continue
			}
			recs, err := s.readRecords(ctx, txn, id)
			if err != nil {
				return err
			}
			bySpan := map[[8]byte][][]byte{}
			var order [][8]byte
			for _, r := range recs {
				if _, ok := bySpan[r.SpanID]; !ok {
					order = append(order, r.SpanID)
				}
				bySpan[r.SpanID] = append(bySpan[r.SpanID], r.Data)
			}
			for _, sid := range order {
				if svc, ok := spanSvc[sid]; ok {
					fn(RecordedSpan{Service: svc, Children: children[sid], Records: bySpan[sid]})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get dependencies: %w", err)
	}
	out := make([]Dependency, 0, len(counts))
	for e, n := range counts {
		out = append(out, Dependency{Parent: e.parent, Child: e.child, CallCount: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Parent != out[j].Parent {
			return out[i].Parent < out[j].Parent
		}
		return out[i].Child < out[j].Child
	})
	return out, nil
}
