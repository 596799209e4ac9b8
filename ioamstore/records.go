package ioamstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// maxRecordNodeIDs is the most node ids one record may carry (2-byte count).
const maxRecordNodeIDs = 0xffff

// ErrInvalidRecord is returned (wrapped) by WriteRecords for a record that
// cannot be stored; nothing of the call is written then.
var ErrInvalidRecord = errors.New("invalid record")

// WriteRecords stores IOAM records. They are content-addressed: a record whose
// Data is already stored for the same (trace, span) is a duplicate and is not
// written again (its other fields are ignored). Records may arrive before or
// after their spans. Calls are serialised so the duplicate count is exact.
func (s *Store) WriteRecords(ctx context.Context, recs []Record) (accepted, duplicates int, err error) {
	if !s.enter() {
		return 0, 0, ErrClosed
	}
	defer s.exit()
	defer s.writing()()
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	for i, r := range recs {
		if len(r.NodeIDs) > maxRecordNodeIDs {
			return 0, 0, fmt.Errorf("record %d: %w: %d node ids (max %d)", i, ErrInvalidRecord, len(r.NodeIDs), maxRecordNodeIDs)
		}
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()

	type pending struct {
		key []byte
		rec *Record
	}
	var todo []pending
	inCall := map[string]struct{}{}
	err = s.db.View(func(txn *badger.Txn) error {
		for i := range recs {
			r := &recs[i]
			k := recordKey{TraceID: r.TraceID, SpanID: r.SpanID, Hash: contentHash(r.Data)}.append(nil)
			if _, ok := inCall[string(k)]; ok {
				duplicates++
				continue
			}
			inCall[string(k)] = struct{}{}
			_, err := txn.Get(k)
			switch {
			case err == nil:
				duplicates++
				continue
			case !errors.Is(err, badger.ErrKeyNotFound):
				return err
			}
			todo = append(todo, pending{k, r})
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("write records: %w", err)
	}
	if len(todo) == 0 {
		s.stats.recordDuplicates.Add(uint64(duplicates))
		return 0, duplicates, nil
	}
	exp := uint64(time.Now().Add(s.cfg.RecordTTL).Unix())
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	set := func(k, v []byte) error {
		e := badger.NewEntry(k, v)
		e.ExpiresAt = exp
		return wb.SetEntry(e)
	}
	for _, p := range todo {
		r := p.rec
		var recv int64
		if !r.Received.IsZero() {
			recv = r.Received.UnixNano()
		}
		v := recordValue{NamespaceID: r.NamespaceID, Received: recv, NodeIDs: r.NodeIDs, Data: r.Data}.append(nil)
		if err := set(p.key, v); err != nil {
			return 0, 0, fmt.Errorf("write records: %w", err)
		}
		recvIdx := uint64(max(recv, 0))
		ik := recordIndexKey{Kind: recIndexNamespace, Value: uint64(r.NamespaceID), Received: recvIdx, TraceID: r.TraceID, SpanID: r.SpanID}
		if err := set(ik.append(nil), nil); err != nil {
			return 0, 0, fmt.Errorf("write record index: %w", err)
		}
		seen := map[uint64]struct{}{}
		for _, n := range r.NodeIDs {
			if _, ok := seen[n]; ok {
				continue
			}
			seen[n] = struct{}{}
			ik := recordIndexKey{Kind: nodeIndexKind(n), Value: n, Received: recvIdx, TraceID: r.TraceID, SpanID: r.SpanID}
			if err := set(ik.append(nil), nil); err != nil {
				return 0, 0, fmt.Errorf("write record index: %w", err)
			}
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, 0, fmt.Errorf("write records: %w", err)
	}
	s.stats.recordsWritten.Add(uint64(len(todo)))
	s.stats.recordDuplicates.Add(uint64(duplicates))
	return len(todo), duplicates, nil
}

func contentHash(data []byte) [recHashLen]byte {
	sum := sha256.Sum256(data)
	return [recHashLen]byte(sum[:recHashLen])
}

// GetRecords returns the records of a trace (any span), sorted by span ID,
// then received time, then Data: at most Config.MaxRecordsPerSpan of each
// span (the first by content hash, so every read returns the same ones);
// the span's other records are counted, not read, in Record.Excess.
func (s *Store) GetRecords(ctx context.Context, traceID [16]byte) ([]Record, error) {
	if !s.enter() {
		return nil, ErrClosed
	}
	defer s.exit()
	var out []Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = s.readRecords(ctx, txn, traceID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MaxExcessCounted bounds the work of counting one span's records beyond
// MaxRecordsPerSpan: past it the count stops and the rest of the span is
// skipped with one seek, so Record.Excess > MaxExcessCounted means "more
// than MaxExcessCounted".
const MaxExcessCounted = 100_000

// readRecords is GetRecords within txn.
func (s *Store) readRecords(ctx context.Context, txn *badger.Txn, traceID [16]byte) ([]Record, error) {
	var out []Record
	prefix := recordPrefix(traceID)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	limit := s.cfg.MaxRecordsPerSpan
	var span [8]byte
	n := 0 // records of span read so far
	for it.Seek(prefix); it.ValidForPrefix(prefix); {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("get records: %w", err)
		}
		item := it.Item()
		k, err := decodeRecordKey(item.Key())
		if err != nil {
			return nil, fmt.Errorf("get records: %w", err)
		}
		if n == 0 || k.SpanID != span {
			span, n = k.SpanID, 0
		}
		if limit > 0 && n >= limit {
			// The span's last record read carries the count of the rest.
			out[len(out)-1].Excess = skipSpanRecords(it, traceID, span, true)
			n = 0
			continue
		}
		n++
		err = item.Value(func(v []byte) error {
			rv, err := decodeRecordValue(v, true)
			if err != nil {
				return err
			}
			r := Record{TraceID: k.TraceID, SpanID: k.SpanID, NodeIDs: rv.NodeIDs, NamespaceID: rv.NamespaceID, Data: rv.Data}
			if rv.Received != 0 {
				r.Received = time.Unix(0, rv.Received).UTC()
			}
			out = append(out, r)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("get records: %w", err)
		}
		it.Next()
	}
	SortRecords(out)
	return out, nil
}

// skipSpanRecords moves it, positioned on a record of (traceID, spanID),
// past the span's remaining records. With count it counts them first, key
// by key without reading a value, up to MaxExcessCounted+1; the rest is
// one seek.
func skipSpanRecords(it *badger.Iterator, traceID [16]byte, spanID [8]byte, count bool) int {
	prefix := append(recordPrefix(traceID), spanID[:]...)
	n := 0
	for count && n <= MaxExcessCounted && it.ValidForPrefix(prefix) {
		n++
		it.Next()
	}
	if it.ValidForPrefix(prefix) {
		it.Seek(prefixSuccessor(prefix))
	}
	return n
}

// prefixSuccessor is the smallest key greater than every key starting with
// p (p with its trailing 0xff bytes dropped and the last byte incremented).
func prefixSuccessor(p []byte) []byte {
	out := bytes.Clone(p)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] != 0xff {
			out[i]++
			return out[:i+1]
		}
	}
	return nil // all 0xff: no key is greater
}

// LimitRecords keeps at most limit records of each span of recs, sorted as
// SortRecords sorts them, and sets Excess on each span's last kept record
// to the number dropped: what GetRecords does, for stores that read every
// record first (clt-storage's upstream mode). limit <= 0 keeps all.
func LimitRecords(recs []Record, limit int) []Record {
	if limit <= 0 {
		return recs
	}
	out := recs[:0] // in place: only ever behind the record read
	var span [8]byte
	n := 0
	for _, r := range recs {
		if n == 0 || r.SpanID != span {
			span, n = r.SpanID, 0
		}
		if n++; n > limit {
			out[len(out)-1].Excess++
			continue
		}
		out = append(out, r)
	}
	return out
}

// SortRecords puts a trace's records in the order GetRecords returns them:
// by span id, then by when they were received, then by content. Stores other
// than this one (clt-storage's upstream mode) use it so reads join records
// identically.
func SortRecords(recs []Record) {
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := &recs[i], &recs[j]
		if c := bytes.Compare(a.SpanID[:], b.SpanID[:]); c != 0 {
			return c < 0
		}
		if !a.Received.Equal(b.Received) {
			return a.Received.Before(b.Received)
		}
		return bytes.Compare(a.Data, b.Data) < 0
	})
}
