package ioamstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Node is one IOAM node seen in records, with the name learned for it (""
// when none). ID is a short (24-bit) id, or a wide (56-bit) one when Wide.
type Node struct {
	ID   uint64
	Wide bool
	Name string
	// Receiver: the node appeared after the first hop of a path, i.e. it
	// received a packet (a router or destination, not only a sender).
	Receiver bool
}

// prefixNode is the node registry:
//
//	[0x50][wide:1][id:8]   value: [fmt=2][flags:1][name]   (flags bit 0: receiver)
//
// with the records' TTL: a node no record mentions any more is forgotten.
const prefixNode byte = 0x50

const nodeKeyLen = 1 + 1 + 8

const (
	nodeValueFormat  byte = 2
	nodeFlagReceiver byte = 1
)

func nodeKey(n Node) []byte {
	b := make([]byte, 0, nodeKeyLen)
	b = append(b, prefixNode)
	if n.Wide {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return binary.BigEndian.AppendUint64(b, n.ID)
}

// WriteNodes stores (or refreshes) nodes with their names; each entry lives
// RecordTTL from this call.
func (s *Store) WriteNodes(ctx context.Context, nodes []Node) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.exit()
	defer s.writing()()
	if err := ctx.Err(); err != nil {
		return err
	}
	exp := uint64(time.Now().Add(s.cfg.RecordTTL).Unix())
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, n := range nodes {
		var flags byte
		if n.Receiver {
			flags |= nodeFlagReceiver
		}
		e := badger.NewEntry(nodeKey(n), append([]byte{nodeValueFormat, flags}, n.Name...))
		e.ExpiresAt = exp
		if err := wb.SetEntry(e); err != nil {
			return fmt.Errorf("write nodes: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("write nodes: %w", err)
	}
	return nil
}

// Nodes returns the stored nodes (not expired), short ids first, by id.
// Entries that do not decode are skipped.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	var out []Node
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := []byte{prefixNode}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			if len(k) != nodeKeyLen || k[1] > 1 {
				continue
			}
			n := Node{Wide: k[1] == 1, ID: binary.BigEndian.Uint64(k[2:])}
			err := it.Item().Value(func(v []byte) error {
				if len(v) >= 2 && v[0] == nodeValueFormat {
					n.Receiver = v[1]&nodeFlagReceiver != 0
					n.Name = string(v[2:])
				}
				return nil
			})
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	return out, nil
}

// NodeRecords returns records whose node ids include one of ids, newest
// first per id, at most limit in all (ids in the order given). A router's
// operations are read from them.
func (s *Store) NodeRecords(ctx context.Context, ids []uint64, limit int) ([]Record, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	var out []Record
	err := s.db.View(func(txn *badger.Txn) error {
		seen := map[recordKey]struct{}{}
		for _, id := range ids {
			prefix := recordIndexPrefix(nodeIndexKind(id), id)
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
			for it.Seek(prefix); it.ValidForPrefix(prefix) && len(out) < limit; it.Next() {
				if err := ctx.Err(); err != nil {
					it.Close()
					return err
				}
				k, err := decodeRecordIndexKey(it.Item().Key())
				if err != nil {
					it.Close()
					return err
				}
				recs, err := readSpanRecords(txn, k.TraceID, k.SpanID, s.cfg.MaxRecordsPerSpan)
				if err != nil {
					it.Close()
					return err
				}
				for _, r := range recs {
					rk := recordKey{TraceID: r.TraceID, SpanID: r.SpanID, Hash: contentHash(r.Data)}
					if _, dup := seen[rk]; dup || !slices.Contains(r.NodeIDs, id) || len(out) >= limit {
						continue
					}
					seen[rk] = struct{}{}
					out = append(out, r)
				}
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node records: %w", err)
	}
	return out, nil
}

// readSpanRecords reads the records of one (trace, span), at most limit
// (> 0) of them, the ones GetRecords returns.
func readSpanRecords(txn *badger.Txn, traceID [16]byte, spanID [8]byte, limit int) ([]Record, error) {
	prefix := append(recordPrefix(traceID), spanID[:]...)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var out []Record
	for it.Seek(prefix); it.ValidForPrefix(prefix) && (limit <= 0 || len(out) < limit); it.Next() {
		err := it.Item().Value(func(v []byte) error {
			rv, err := decodeRecordValue(v, true)
			if err != nil {
				return err
			}
			out = append(out, Record{TraceID: traceID, SpanID: spanID, NodeIDs: rv.NodeIDs, NamespaceID: rv.NamespaceID,
				Received: time.Unix(0, rv.Received).UTC(), Data: rv.Data})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
