package ioam6

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ioamOptions walks every IOAM option of hbh and returns their offsets and
// the error that ended the walk.
func ioamOptions(hbh []byte) ([]int, error) {
	var offs []int
	opt, off, err := FindIOAMOption(hbh)
	for ; err == nil; opt, off, err = NextIOAMOption(hbh, off+len(opt)) {
		offs = append(offs, off)
	}
	return offs, err
}

// TestNextIOAMOptionWalksEveryOption: two IOAM options in either order and
// an IOAM option after a Router Alert (RFC 2711, 4 bytes, then PadN(0)).
func TestNextIOAMOptionWalksEveryOption(t *testing.T) {
	ns123 := cat([]byte{0x31, 0x0a, 0x00, 0x00}, wire(0x007b0000, 0x00000000)) // 12 B
	ns124 := cat([]byte{0x31, 0x0a, 0x00, 0x00}, wire(0x007c0000, 0x00000000))
	tests := []struct {
		name string
		hbh  []byte
		offs []int
		ns   []uint16
	}{
		// Next Header, Hdr Ext Len 3 (32 B), PadN(0), two options, PadN(2).
		{"two ioam options", cat([]byte{0x11, 0x03, 0x01, 0x00}, ns124, ns123, []byte{0x01, 0x02, 0, 0}), []int{4, 16}, []uint16{124, 123}},
		{"other order", cat([]byte{0x11, 0x03, 0x01, 0x00}, ns123, ns124, []byte{0x01, 0x02, 0, 0}), []int{4, 16}, []uint16{123, 124}},
		// Hdr Ext Len 2 (24 B): Router Alert (value 2) at 2, PadN(0) at 6, IOAM at 8, PadN(2).
		{"router alert first", cat([]byte{0x11, 0x02, 0x05, 0x02, 0x00, 0x02, 0x01, 0x00}, ns123, []byte{0x01, 0x02, 0, 0}),
			[]int{8}, []uint16{123}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offs, err := ioamOptions(tt.hbh)
			require.ErrorIs(t, err, ErrNotFound, "the walk ends at the header's end")
			assert.Equal(t, tt.offs, offs)
			for i, off := range offs {
				opt, _, err := NextIOAMOption(tt.hbh, off)
				require.NoError(t, err)
				tr, err := DecodeTrace(opt, ossCC)
				require.NoError(t, err)
				assert.Equal(t, tt.ns[i], tr.Header.NamespaceID)
			}
		})
	}
}

// TestNextIOAMOptionReportsErrorsAfterAnOption: a malformed option after a
// good IOAM option ends the walk with its error, not ErrNotFound.
func TestNextIOAMOptionReportsErrorsAfterAnOption(t *testing.T) {
	ns123 := cat([]byte{0x31, 0x0a, 0x00, 0x00}, wire(0x007b0000, 0x00000000))
	hbh := cat([]byte{0x11, 0x03, 0x01, 0x00}, ns123, make([]byte, 16)) // then 16 Pad1: a run over 7 bytes
	offs, err := ioamOptions(hbh)
	assert.Equal(t, []int{4}, offs)
	require.ErrorIs(t, err, ErrMalformed)
	assert.NotErrorIs(t, err, ErrNotFound)
}

// FuzzNextIOAMOption: the walk ends (at the header's end or at an error),
// offsets strictly increase, and every option returned is a 4n-aligned IOAM
// TLV inside the header, equal to the bytes at its offset.
func FuzzNextIOAMOption(f *testing.F) {
	for _, b := range goldenHBH {
		f.Add(b)
	}
	for _, tt := range findOptionErrorTests {
		f.Add(tt.hbh)
	}
	ns := cat([]byte{0x31, 0x0a, 0x00, 0x00}, wire(0x007b0000, 0x00000000))
	f.Add(cat([]byte{0x11, 0x03, 0x01, 0x00}, ns, ns, []byte{0x01, 0x02, 0, 0}))
	f.Add(cat([]byte{0x11, 0x02, 0x05, 0x02, 0x00, 0x02, 0x01, 0x00}, ns, []byte{0x01, 0x02, 0, 0}))
	f.Fuzz(func(t *testing.T, hbh []byte) {
		prev := -1
		opt, off, err := FindIOAMOption(hbh)
		for n := 0; err == nil; n++ {
			end := (int(hbh[1]) + 1) * 8
			if off <= prev || off%4 != 0 || len(opt) < 2 || opt[0] != IPv6OptionIOAM || len(opt) != 2+int(opt[1]) ||
				off+len(opt) > end || !bytes.Equal(hbh[off:off+len(opt)], opt) {
				t.Fatalf("bad option %x at %d (previous at %d) in %x", opt, off, prev, hbh)
			}
			if n > end {
				t.Fatalf("walk of a %d-byte header did not end", end)
			}
			prev = off
			opt, off, err = NextIOAMOption(hbh, off+len(opt))
		}
		if opt != nil || off != 0 {
			t.Fatalf("error %v with opt %x, offset %d", err, opt, off)
		}
	})
}
