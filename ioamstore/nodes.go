package ioamstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Node is one IOAM node seen in records, with the name learned for it (""
// when none). ID is a short (24-bit) id, or a wide (56-bit) one when Wide.
type Node struct {
	ID   uint64
	Wide bool
	Name string
}

// prefixNode is the node registry:
//
//	[0x50][wide:1][id:8]   value: [fmt=1][name]
//
// with the records' TTL: a node no record mentions any more is forgotten.
const prefixNode byte = 0x50

const nodeKeyLen = 1 + 1 + 8

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
	if err := ctx.Err(); err != nil {
		return err
	}
	exp := uint64(time.Now().Add(s.cfg.RecordTTL).Unix())
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, n := range nodes {
		e := badger.NewEntry(nodeKey(n), append([]byte{valueFormat}, n.Name...))
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
				if len(v) >= 1 && v[0] == valueFormat {
					n.Name = string(v[1:])
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
