package ioamstore

// A small Bloom filter per service index entry. It only prunes candidates
// before the exact check, so false positives cost a trace load and false
// negatives are impossible. 16 bits per feature and 11 probes give about
// 0.05 % false positives: a search for an absent attribute over 1M spans then
// loads ~45 traces instead of ~270 at 12 bits (~6 more bytes per span).
const (
	bloomBitsPerFeature = 16
	bloomProbes         = 11
	bloomMinBits        = 64
)

// bloomBuild returns a filter holding features (duplicates allowed, but the
// caller should dedupe: the size follows len(features)).
func bloomBuild(dst []byte, features []uint64) []byte {
	m := len(features) * bloomBitsPerFeature
	if m < bloomMinBits {
		m = bloomMinBits
	}
	nbytes := (m + 7) / 8
	start := len(dst)
	dst = append(dst, make([]byte, nbytes)...)
	bits := dst[start:]
	mbits := uint32(nbytes * 8)
	for _, f := range features {
		a, b := uint32(f), uint32(f>>32)|1
		for i := uint32(0); i < bloomProbes; i++ {
			p := (a + i*b) % mbits
			bits[p/8] |= 1 << (p % 8)
		}
	}
	return dst
}

// bloomHas reports whether f may be in the filter. An empty filter (from a
// corrupt value) answers true so nothing is lost.
func bloomHas(bits []byte, f uint64) bool {
	if len(bits) == 0 {
		return true
	}
	mbits := uint32(len(bits) * 8)
	a, b := uint32(f), uint32(f>>32)|1
	for i := uint32(0); i < bloomProbes; i++ {
		p := (a + i*b) % mbits
		if bits[p/8]&(1<<(p%8)) == 0 {
			return false
		}
	}
	return true
}
