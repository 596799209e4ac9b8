package ioamstore

import (
	"bytes"
	"encoding/hex"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChunkKey(t *testing.T) {
	k := chunkKey{TraceID: tid(0x1122), BatchSeq: 0x0102030405060708, Part: 0x0a0b}
	b := k.append(nil)
	// [0x01][traceID:16][batchSeq:8][part:2]
	assert.Equal(t, "01"+"0000000000abcdef0000000000001122"+"0102030405060708"+"0a0b", hex.EncodeToString(b))
	require.Len(t, b, chunkKeyLen)
	assert.True(t, bytes.HasPrefix(b, chunkPrefix(k.TraceID)))
}

func TestSvcIndexKeyOrder(t *testing.T) {
	k := svcIndexKey{ServiceHash: serviceHash("svc"), MaxStart: 1000, TraceID: tid(1), BatchSeq: 9}
	b := k.append(nil)
	require.Len(t, b, svcIndexKeyLen)
	got, err := decodeSvcIndexKey(b)
	require.NoError(t, err)
	assert.Equal(t, k, got)
	newer := k
	newer.MaxStart = 2000
	assert.Negative(t, bytes.Compare(newer.append(nil), b), "newer sorts first")
	assert.True(t, bytes.Compare(svcIndexSeek(k.ServiceHash, 1500), b) < 0)
	assert.True(t, bytes.Compare(svcIndexSeek(k.ServiceHash, 1500), newer.append(nil)) > 0)
	assert.Equal(t, uint64(0), inv(math.MaxUint64))

	v := svcIndexValue{Spread: 5, MinDuration: 300, MaxDuration: 1 << 40, Bloom: []byte{1, 2, 3}}
	gv, err := decodeSvcIndexValue(v.append(nil))
	require.NoError(t, err)
	assert.Equal(t, v, gv)
	_, err = decodeSvcIndexValue([]byte{valueFormat, 0x80})
	require.Error(t, err)
	_, err = decodeSvcIndexValue([]byte{9})
	require.Error(t, err)
}

func TestNameKeys(t *testing.T) {
	b := appendServiceNameKey(nil, "svc")
	assert.Equal(t, []byte{prefixService, 0, 3, 's', 'v', 'c'}, b)
	s, err := decodeServiceNameKey(b)
	require.NoError(t, err)
	assert.Equal(t, "svc", s)
	_, err = decodeServiceNameKey(b[:4])
	require.Error(t, err)

	ok := appendOperationKey(nil, "svc", 2, "GET /x")
	assert.Equal(t, append([]byte{prefixOperation, 0, 3, 's', 'v', 'c', 2}, "GET /x"...), ok)
	svc, kind, op, err := decodeOperationKey(ok)
	require.NoError(t, err)
	assert.Equal(t, "svc", svc)
	assert.Equal(t, byte(2), kind)
	assert.Equal(t, "GET /x", op)
	// "svc" must not be a key prefix of service "svc-a"'s operations
	assert.False(t, bytes.HasPrefix(appendOperationKey(nil, "svc-a", 2, "x"), operationPrefix("svc")))
	_, _, _, err = decodeOperationKey(ok[:5])
	require.Error(t, err)
}

func TestRecordKeys(t *testing.T) {
	k := recordKey{TraceID: tid(1), SpanID: sid(2), Hash: contentHash([]byte("x"))}
	b := k.append(nil)
	require.Len(t, b, recordKeyLen)
	got, err := decodeRecordKey(b)
	require.NoError(t, err)
	assert.Equal(t, k, got)
	_, err = decodeRecordKey(b[:10])
	require.Error(t, err)

	ik := recordIndexKey{Kind: recIndexNode, Value: 0xdeadbeef, Received: 77, TraceID: tid(3), SpanID: sid(4)}
	ib := ik.append(nil)
	require.Len(t, ib, recordIndexKeyLen)
	assert.True(t, bytes.HasPrefix(ib, recordIndexPrefix(recIndexNode, 0xdeadbeef)))
	gik, err := decodeRecordIndexKey(ib)
	require.NoError(t, err)
	assert.Equal(t, ik, gik)

	// Node ids above 32 bits have their own index kind with an 8-byte value.
	wk := recordIndexKey{Kind: recIndexWideNode, Value: 0x00a1b2c3d4e5f6, Received: 77, TraceID: tid(3), SpanID: sid(4)}
	wb := wk.append(nil)
	require.Len(t, wb, recordIndexKeyLen+wideIndexExtra)
	assert.Equal(t, []byte{prefixRecordIndex, recIndexWideNode, 0, 0, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6}, wb[:10], "[0x41][3][id:8]")
	assert.True(t, bytes.HasPrefix(wb, recordIndexPrefix(nodeIndexKind(0x00a1b2c3d4e5f6), 0x00a1b2c3d4e5f6)))
	gwk, err := decodeRecordIndexKey(wb)
	require.NoError(t, err)
	assert.Equal(t, wk, gwk)
	_, err = decodeRecordIndexKey(wb[:recordIndexKeyLen])
	require.Error(t, err, "a wide key cut to the short length")
	assert.Equal(t, recIndexNode, nodeIndexKind(0xffffffff))
	assert.Equal(t, recIndexWideNode, nodeIndexKind(0x100000000))

	v := recordValue{NamespaceID: 9, Received: -5, NodeIDs: []uint64{1, 2, 0xffffffffffffff}, Data: []byte("data")}
	gv, err := decodeRecordValue(v.append(nil), true)
	require.NoError(t, err)
	assert.Equal(t, v, gv)
	// Format 1 (4-byte node ids), as written before wide ids were indexed,
	// still reads.
	v1 := []byte{1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 5, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 'd'}
	gv, err = decodeRecordValue(v1, true)
	require.NoError(t, err)
	assert.Equal(t, recordValue{NamespaceID: 9, Received: 5, NodeIDs: []uint64{1, 2}, Data: []byte("d")}, gv)
	bad := v.append(nil)
	bad[12] = 200 // claims 200 node ids
	_, err = decodeRecordValue(bad, true)
	require.Error(t, err)
}

func TestChunkHeader(t *testing.T) {
	h := chunkHeader{MinStart: 1, MaxEnd: 2, Spans: 3}
	b := append(h.append(nil), "payload"...)
	got, rest, err := decodeChunkHeader(b)
	require.NoError(t, err)
	assert.Equal(t, h, got)
	assert.Equal(t, "payload", string(rest))
	_, _, err = decodeChunkHeader(b[:5])
	require.Error(t, err)
	b[0] = 7
	_, _, err = decodeChunkHeader(b)
	require.Error(t, err)
}

func TestBloom(t *testing.T) {
	var h hasher
	var feats []uint64
	for i := range 200 {
		feats = append(feats, h.attr("k", string(rune('a'+i%26))+string(rune('A'+i/26))))
	}
	f := bloomBuild(nil, feats)
	for _, x := range feats {
		assert.True(t, bloomHas(f, x))
	}
	fp := 0
	for i := range 10000 {
		if bloomHas(f, h.attr("other", string(rune(i)))) {
			fp++
		}
	}
	assert.Less(t, fp, 30, "false positive rate above 0.3%%")
	assert.True(t, bloomHas(nil, 1), "empty filter never prunes")
}

func TestValueString(t *testing.T) {
	assert.Equal(t, "123", ValueString(intKV("", 123).Value))
	assert.Equal(t, "-1", ValueString(intKV("", -1).Value))
	assert.Equal(t, "true", ValueString(boolKV("", true).Value))
	assert.Equal(t, "72.5", ValueString(dblKV("", 72.5).Value))
	assert.Equal(t, "3", ValueString(dblKV("", 3).Value))
	assert.Equal(t, "1e+21", ValueString(dblKV("", 1e21).Value))
	assert.Equal(t, "1e-7", ValueString(dblKV("", 1e-7).Value))
	assert.Equal(t, "x", ValueString(strKV("", "x").Value))
	assert.Equal(t, "", ValueString(nil))
}

// Fuzz the decoders: never panic, and a successful decode re-encodes to the
// same bytes.
func FuzzDecodeKeys(f *testing.F) {
	f.Add(svcIndexKey{ServiceHash: 1, MaxStart: 2, TraceID: tid(3), BatchSeq: 4}.append(nil))
	f.Add(recordKey{TraceID: tid(1), SpanID: sid(2)}.append(nil))
	f.Add(recordIndexKey{Kind: 1, Value: 2, Received: 3, TraceID: tid(4), SpanID: sid(5)}.append(nil))
	f.Add(recordIndexKey{Kind: recIndexWideNode, Value: 1 << 40, Received: 3, TraceID: tid(4), SpanID: sid(5)}.append(nil))
	f.Add(appendServiceNameKey(nil, "svc"))
	f.Add(appendOperationKey(nil, "svc", 2, "op"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := decodeSvcIndexKey(b); err == nil {
			require.Equal(t, b[:svcIndexKeyLen], k.append(nil))
		}
		if k, err := decodeRecordKey(b); err == nil {
			require.Equal(t, b[:recordKeyLen], k.append(nil))
		}
		if k, err := decodeRecordIndexKey(b); err == nil {
			enc := k.append(nil)
			require.Equal(t, b[:len(enc)], enc)
		}
		if s, err := decodeServiceNameKey(b); err == nil {
			require.Equal(t, b, appendServiceNameKey(nil, s))
		}
		if s, kind, op, err := decodeOperationKey(b); err == nil {
			require.Equal(t, b, appendOperationKey(nil, s, kind, op))
		}
	})
}

func FuzzDecodeValues(f *testing.F) {
	f.Add(recordValue{NamespaceID: 1, Received: 2, NodeIDs: []uint64{3}, Data: []byte("d")}.append(nil))
	f.Add(svcIndexValue{Spread: 1, MinDuration: 2, MaxDuration: 3, Bloom: []byte{4}}.append(nil))
	f.Add(chunkHeader{MinStart: 1, MaxEnd: 2, Spans: 3}.append(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := decodeRecordValue(b, true); err == nil {
			if b[0] == recordValueWide {
				require.Equal(t, b, v.append(nil))
			} else {
				// Format 1 re-encodes as format 2 with the same content.
				again, err := decodeRecordValue(v.append(nil), true)
				require.NoError(t, err)
				require.Equal(t, v, again)
			}
		}
		_, _ = decodeSvcIndexValue(b)
		_, _, _ = decodeChunkHeader(b)
	})
}
