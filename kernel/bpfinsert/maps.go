package bpfinsert

// Mirrors of bpf/insert.h; TestObjectLayout checks the sizes against the
// object's BTF.

const (
	maxHdr        = 264
	maxIfaces     = 64
	maxPrefixes   = 64
	maxPorts      = 64
	sockTag       = 0x01
	sockShort     = 0x100
	sockAPI       = 0x400 // set through the map API: the program parses no request
	cfgTagUnsampl = 0x01
)

// Counter indices of the clt_stats map (enum clt_counter).
const (
	cPktTagged = iota
	cBytesAdded
	cReqParsed
	cTPMissing
	cTPInvalid
	cTPUnsampled
	cSkipNotIPv6
	cSkipNotTCP
	cSkipExtHdr
	cSkipUnconfigured
	cSkipNoSocket
	cSkipNoState
	cSkipTooBig
	cSkipNoIfcfg
	cErrAdjust
	cErrConfig
	cMSSClamped
	cMSSNotFirst
	cRateLimited
	numCounters
)

type bpfTmpl struct {
	Hdr       [maxHdr]byte
	Len       uint16
	IDsOff    uint16
	IDsLen    uint16
	TSSecOff  uint16
	TSFracOff uint16
	_         [3]uint16
}

type bpfIfcfg struct {
	Tmpl       [2]bpfTmpl
	ClockOffNs int64
	MTU        uint32
	Flags      uint32
	MSSMax     uint16
	_          uint16
	RateMax    uint32
}

type bpfLPMKey struct {
	PrefixLen uint32
	Addr      [16]byte
}

type bpfSock struct {
	IDs   [24]byte
	Flags uint32
	_     uint32
}
