package bpfinsert

// Stats are the program's counters since load.
type Stats struct {
	PacketsTagged  uint64 // packets (GSO packets count once) given the header
	BytesAdded     uint64 // header bytes on the wire (GSO: per segment)
	RequestsParsed uint64 // segments that start an HTTP/1.x request
	// Requests whose traceparent was missing, invalid or unsampled (and so
	// not tagged unless tag_unsampled).
	TraceparentMissing   uint64
	TraceparentInvalid   uint64
	TraceparentUnsampled uint64
	// Skipped packets by reason.
	SkipNotIPv6      uint64
	SkipNotTCP       uint64
	SkipExtHeader    uint64 // already has an extension header (e.g. kernel/clt's socket option)
	SkipUnconfigured uint64 // destination prefix or port not configured
	SkipNoSocket     uint64 // no socket (forwarded traffic)
	SkipNoState      uint64 // the socket's current request has no sampled traceparent
	SkipTooBig       uint64 // would exceed the MTU: sent untagged
	SkipNoInterface  uint64 // interface not configured
	ErrAdjust        uint64 // the kernel refused to grow the packet (sent untagged)
	ErrConfig        uint64
	MSSClamped       uint64 // SYN-ACKs whose MSS was lowered
	MSSNotFirst      uint64 // SYN-ACKs whose MSS option was not first (not clamped)
	RateLimited      uint64 // sampled requests not tagged: over max_requests_per_second
}

func statsFrom(v [numCounters]uint64) Stats {
	return Stats{
		PacketsTagged: v[cPktTagged], BytesAdded: v[cBytesAdded], RequestsParsed: v[cReqParsed],
		TraceparentMissing: v[cTPMissing], TraceparentInvalid: v[cTPInvalid], TraceparentUnsampled: v[cTPUnsampled],
		SkipNotIPv6: v[cSkipNotIPv6], SkipNotTCP: v[cSkipNotTCP], SkipExtHeader: v[cSkipExtHdr],
		SkipUnconfigured: v[cSkipUnconfigured], SkipNoSocket: v[cSkipNoSocket], SkipNoState: v[cSkipNoState],
		SkipTooBig: v[cSkipTooBig], SkipNoInterface: v[cSkipNoIfcfg], ErrAdjust: v[cErrAdjust],
		ErrConfig: v[cErrConfig], MSSClamped: v[cMSSClamped], MSSNotFirst: v[cMSSNotFirst],
		RateLimited: v[cRateLimited],
	}
}
