package clt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// Reason says why an option was not applied.
type Reason uint8

// Reasons.
const (
	// ReasonPermission: the process lacks CAP_NET_RAW (EPERM/EACCES).
	ReasonPermission Reason = iota
	// ReasonIPv4: the socket or peer is IPv4; IPv6 options do not apply.
	ReasonIPv4
	// ReasonKernel: the kernel refused the option for another reason
	// (EINVAL, ENOPROTOOPT, ...).
	ReasonKernel
	// ReasonUnsupportedConn: the connection exposes no socket
	// (not a syscall.Conn, e.g. a custom net.Conn).
	ReasonUnsupportedConn
	// ReasonBuild: the header could not be built (should not happen with a
	// validated Config).
	ReasonBuild
	numReasons
)

var reasonNames = [numReasons]string{"permission", "ipv4", "kernel", "unsupported_conn", "build"}

// String returns the metric label, e.g. "permission".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// ErrSkipped is wrapped by every *SkipError.
var ErrSkipped = errors.New("clt: ioam option not applied")

// SkipError is returned in strict mode when an option could not be applied.
type SkipError struct {
	Reason Reason
	Err    error // the underlying error, if any
}

// Error implements error.
func (e *SkipError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%v (%s)", ErrSkipped, e.Reason)
	}
	return fmt.Sprintf("%v (%s): %v", ErrSkipped, e.Reason, e.Err)
}

// Unwrap returns ErrSkipped and the cause, so errors.Is works for both.
func (e *SkipError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrSkipped}
	}
	return []error{ErrSkipped, e.Err}
}

// Stats are cumulative counters of an Injector.
type Stats struct {
	// Applied counts options set (sticky) or attached (cmsg), and sockets
	// whose IDs were set in the SocketMap.
	Applied uint64
	// Mapped counts the Applied that went through the SocketMap.
	Mapped uint64
	// Cleared counts sticky options removed for requests without a span.
	Cleared uint64
	// Untraced counts packets or requests sent without a valid span.
	Untraced uint64
	// Skipped counts failures by Reason (index with a Reason).
	Skipped [numReasons]uint64
	// EgressUnknown counts failed egress interface lookups (no route,
	// no netlink, ...): the own entry then says 0xFFFF. At most one per
	// destination and cache TTL.
	EgressUnknown uint64
}

// SkippedTotal sums Skipped.
func (s Stats) SkippedTotal() uint64 {
	var t uint64
	for _, v := range s.Skipped {
		t += v
	}
	return t
}

// Settings are the Injector's collaborators.
type Settings struct {
	// Logger receives one warning per skip reason (nil: discard).
	Logger *slog.Logger
	// Sysctl is where New reads net.ipv6.ioam6_id and ioam6_id_wide when
	// Config leaves them nil (nil: /proc/sys of the calling thread's network
	// namespace).
	Sysctl *sysctl.Sysctl
	// SocketMap, when set, is used instead of the socket option while it
	// is Loaded: the per-socket map of the eBPF inserter, opened with
	// kernel/bpfinsert.OpenSocketMap(bpfinsert.DefaultSocketMapPin) (clt-agent
	// pins it with insert.socket_map_pin). The inserter then writes the
	// header (its template, its egress ids); a socket costs one map update
	// per request instead of a setsockopt, and no CAP_NET_RAW.
	SocketMap SocketMap
}

// SocketMap sets a socket's IDs by socket cookie (SO_COOKIE) in the eBPF
// inserter's per-socket map; *bpfinsert.SocketMap implements it.
type SocketMap interface {
	// Loaded reports whether a program still uses the map (cheap: called
	// per request).
	Loaded() bool
	SetSocket(cookie uint64, ids ioam6.IDs) error
	ClearSocket(cookie uint64) error
}

// Injector builds IOAM headers for spans and puts them on sockets. It is
// safe for concurrent use and starts no goroutine.
type Injector struct {
	cfg     Config
	spec    ioam6.HBHSpec
	logger  *slog.Logger
	sockMap SocketMap // nil: the socket option only

	// setHopOpts and lookupEgress are replaced by fakes in tests.
	setHopOpts   func(fd int, hbh []byte) error
	lookupEgress egressLookup

	fds     fdSet
	egress  egressCache
	cookies cookieCache

	applied, cleared, untraced, egressUnknown, mapped atomic.Uint64
	skipped                                           [numReasons]atomic.Uint64
	logged                                            [numReasons]atomic.Bool

	bufs sync.Pool // *[]byte scratch for cmsgs
	ops  sync.Pool // *setOp
}

// New validates cfg and returns an Injector.
func New(cfg Config, set Settings) (*Injector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clt: config: %w", err)
	}
	lg := set.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	inj := &Injector{cfg: cfg, spec: cfg.spec(), logger: lg, sockMap: set.SocketMap, setHopOpts: setHopOpts, lookupEgress: lookupEgressNetlink}
	inj.spec.Own = ownEntry(cfg, set.Sysctl)
	inj.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	inj.ops.New = func() any { return newSetOp(inj) }
	return inj, nil
}

// ownHopLimit is the hop limit written in the sender's own entry: the
// packet has not been forwarded yet (Linux's default IPv6 hop limit).
const ownHopLimit = 64

// ownEntry fills the sender's own entry (oss carrier) with what a host
// knows at start; unavailable fields use the RFC 9197 "all ones"
// convention, as Linux does. The egress interface ids are filled per
// destination (egressFor), the timestamp per header. The node ids come from
// the config, else from the sysctls of the calling thread's network
// namespace, else stay "not available".
func ownEntry(cfg Config, sc *sysctl.Sysctl) ioam6.Node {
	id := uint32(ioam6.NodeIDUnavailable)
	if cfg.NodeID != nil {
		id = *cfg.NodeID
	} else if v, err := sc.NodeID(); err == nil {
		id = v
	}
	wide := uint64(ioam6.WideNodeIDUnavailable)
	if cfg.NodeIDWide != nil {
		wide = *cfg.NodeIDWide
	} else if v, err := sc.WideNodeID(); err == nil {
		wide = v
	}
	n := ioam6.Node{
		HopLimit: ownHopLimit, NodeID: id,
		IngressIf: ioam6.IfIDUnavailable, EgressIf: ioam6.IfIDUnavailable,
		TransitDelay: ioam6.U32Unavailable, NamespaceData: ioam6.U32Unavailable, QueueDepth: ioam6.U32Unavailable,
		ChecksumComplement: ioam6.U32Unavailable,
		WideHopLimit:       ownHopLimit, WideNodeID: wide,
		WideIngressIf: ioam6.WideIfIDUnavailable, WideEgressIf: ioam6.WideIfIDUnavailable,
		WideNamespaceData: ioam6.U64Unavailable,
		BufferOccupancy:   ioam6.U32Unavailable,
	}
	for i := range n.Undefined {
		n.Undefined[i] = ioam6.U32Unavailable
	}
	return n
}

// Config returns the configuration.
func (inj *Injector) Config() Config { return inj.cfg }

// SpanIDs converts a span context to the IDs on the wire; a trace ID whose upper
// 64 bits are zero is sent as a 64-bit ID (oss carrier).
func SpanIDs(sc trace.SpanContext) ioam6.IDs {
	ids := ioam6.IDs{TraceID: sc.TraceID(), SpanID: sc.SpanID()}
	ids.Short = [8]byte(ids.TraceID[:8]) == [8]byte{}
	return ids
}

// AppendHBH appends the Hop-by-Hop header for sc to dst. The own entry's
// timestamp is the current time (microseconds, as Linux writes); its
// interface ids are 0xFFFF (no socket, so no egress device: SetConn,
// ControlContext and WriteMsgUDP fill the egress ids).
func (inj *Injector) AppendHBH(dst []byte, sc trace.SpanContext) ([]byte, error) {
	return inj.appendHBH(dst, sc, unknownEgress, time.Now())
}

func (inj *Injector) appendHBH(dst []byte, sc trace.SpanContext, eg egress, now time.Time) ([]byte, error) {
	spec := inj.spec
	spec.Own.TimestampSec = uint32(now.Unix())
	spec.Own.TimestampFrac = uint32(now.Nanosecond() / int(time.Microsecond))
	spec.Own.EgressIf, spec.Own.WideEgressIf = eg.id, eg.wide
	return ioam6.AppendHBH(dst, spec, SpanIDs(sc))
}

// Stats returns the counters.
func (inj *Injector) Stats() Stats {
	s := Stats{Applied: inj.applied.Load(), Cleared: inj.cleared.Load(), Untraced: inj.untraced.Load(),
		EgressUnknown: inj.egressUnknown.Load(), Mapped: inj.mapped.Load()}
	for i := range s.Skipped {
		s.Skipped[i] = inj.skipped[i].Load()
	}
	return s
}

// skip counts a failure, logs its reason once, and returns the error the
// caller must surface (nil unless strict).
func (inj *Injector) skip(r Reason, cause error) error {
	inj.skipped[r].Add(1)
	if !inj.logged[r].Swap(true) {
		inj.logger.Warn("clt: sending without the IOAM option",
			slog.String("reason", r.String()), slog.Any("error", cause), slog.Bool("strict", inj.cfg.Strict))
	}
	if inj.cfg.Strict {
		return &SkipError{Reason: r, Err: cause}
	}
	return nil
}

// classify maps a setsockopt/sendmsg error to a reason.
func classify(err error) Reason {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return ReasonPermission
	case errors.Is(err, syscall.ENOPROTOOPT), errors.Is(err, syscall.EAFNOSUPPORT):
		return ReasonIPv4
	}
	return ReasonKernel
}

// isIPv4 reports whether addr is an IPv4 (or v4-mapped) address.
func isIPv4(addr net.Addr) bool {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return false
	}
	return ip.To4() != nil
}

// rawConner is what sockets expose; *net.TCPConn, *net.UDPConn and
// *tls.Conn's NetConn() satisfy it.
type rawConner interface {
	SyscallConn() (syscall.RawConn, error)
}

// SetConn sets the sticky option for sc on conn, or clears an option this
// Injector set before when sc is not tagged (invalid, or unsampled unless
// Config.TagUnsampled). conn is
// a *net.TCPConn, *net.UDPConn or anything with NetConn() returning one
// (*tls.Conn). Later writes carry it until the next call. Errors follow the
// failure policy (nil unless strict).
func (inj *Injector) SetConn(conn net.Conn, sc trace.SpanContext) error {
	for {
		if _, ok := conn.(rawConner); ok {
			break
		}
		nc, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return inj.skip(ReasonUnsupportedConn, fmt.Errorf("%T has no socket", conn))
		}
		conn = nc.NetConn()
	}
	want := inj.tagged(sc)
	if isIPv4(conn.RemoteAddr()) {
		if !want {
			inj.untraced.Add(1)
			return nil // an IPv4 socket never carries the option
		}
		return inj.skip(ReasonIPv4, nil)
	}
	rc, err := conn.(rawConner).SyscallConn()
	if err != nil {
		return inj.skip(ReasonUnsupportedConn, err)
	}
	tc, _ := conn.(*net.TCPConn)
	return inj.setRawConn(rc, tc, sc, want, addrOf(conn.RemoteAddr()))
}

// setRaw sets the option for sc on a raw socket when want, else clears it
// if this Injector set it before (tracked per descriptor, see fdSet). peer
// selects the egress device written in the own entry (invalid: 0xFFFF).
func (inj *Injector) setRaw(rc syscall.RawConn, sc trace.SpanContext, want bool, peer netip.Addr) error {
	return inj.setRawConn(rc, nil, sc, want, peer)
}

// setRawConn is setRaw for a connection whose socket cookie may be cached
// (tc non-nil): the SocketMap path then costs one syscall, the map update.
func (inj *Injector) setRawConn(rc syscall.RawConn, tc *net.TCPConn, sc trace.SpanContext, want bool, peer netip.Addr) error {
	op := inj.ops.Get().(*setOp)
	op.sc, op.peer, op.want = sc, peer, want
	if tc != nil && inj.sockMap != nil {
		op.cookie, _ = inj.cookies.get(tc)
	}
	err := rc.Control(op.fn)
	serr, berr, called, viaMap := op.serr, op.berr, op.called, op.viaMap
	if tc != nil && op.newCookie != 0 {
		inj.cookies.put(tc, op.newCookie)
	}
	op.reset()
	inj.ops.Put(op)
	if err != nil {
		return inj.skip(ReasonUnsupportedConn, err)
	}
	if berr != nil {
		return inj.skip(ReasonBuild, berr)
	}
	if !want {
		inj.untraced.Add(1)
		if called && serr == nil {
			inj.cleared.Add(1)
		} else if serr != nil {
			// Failing to clear never fails an untraced request.
			_ = inj.skip(classify(serr), fmt.Errorf("setsockopt IPV6_HOPOPTS (clear): %w", serr))
		}
		return nil
	}
	if serr != nil {
		if viaMap {
			return inj.skip(ReasonKernel, fmt.Errorf("socket map: %w", serr))
		}
		return inj.skip(classify(serr), fmt.Errorf("setsockopt IPV6_HOPOPTS: %w", serr))
	}
	inj.applied.Add(1)
	if viaMap {
		inj.mapped.Add(1)
	}
	return nil
}

// setOp is the state of one setRaw call. It is pooled with its Control
// callback bound once, so a request allocates no closure.
type setOp struct {
	inj        *Injector
	sc         trace.SpanContext
	peer       netip.Addr
	want       bool
	buf        []byte
	serr, berr error
	called     bool
	viaMap     bool             // set or cleared through the SocketMap
	cookie     uint64           // the socket's cookie when cached, else 0
	newCookie  uint64           // a cookie read by control, to cache
	fn         func(fd uintptr) // op.control
}

func newSetOp(inj *Injector) *setOp {
	op := &setOp{inj: inj, buf: make([]byte, 0, 512)}
	op.fn = op.control
	return op
}

func (op *setOp) reset() {
	op.sc, op.peer, op.serr, op.berr, op.called, op.viaMap = trace.SpanContext{}, netip.Addr{}, nil, nil, false, false
	op.cookie, op.newCookie = 0, 0
}

// control runs with the descriptor held by rc.Control.
func (op *setOp) control(fd uintptr) {
	inj := op.inj
	if inj.sockMap != nil && inj.sockMap.Loaded() {
		op.controlMap(int(fd))
		return
	}
	var hbh []byte
	if op.want {
		// Built here: the egress lookup (on a cache miss) needs the socket
		// for its network namespace.
		now := time.Now()
		if hbh, op.berr = inj.appendHBH(op.buf[:0], op.sc, inj.egressFor(int(fd), op.peer, now), now); op.berr != nil {
			return
		}
		op.buf = hbh
	} else if inj.fds.get(int(fd))&fdOpt == 0 {
		inj.fds.set(int(fd), 0) // a map entry, if any, went with its map
		return                  // never set by us: nothing to clear, no syscall
	}
	op.called = true
	if op.serr = inj.setHopOpts(int(fd), hbh); op.serr == nil {
		if op.want {
			inj.fds.set(int(fd), fdOpt)
		} else {
			inj.fds.set(int(fd), 0)
		}
	}
}

// controlMap sets or clears the socket's entry in the SocketMap. A sticky
// option set before the map was there is removed: it would win on the wire
// (the program skips packets that already have an extension header).
func (op *setOp) controlMap(fd int) {
	inj := op.inj
	op.viaMap = true
	have := inj.fds.get(fd)
	if op.want || have&fdMap != 0 {
		op.called = true
		cookie, err := op.cookie, error(nil)
		if cookie == 0 {
			cookie, err = socketCookie(fd)
			op.newCookie = cookie
		}
		if err == nil {
			if op.want {
				err = inj.sockMap.SetSocket(cookie, SpanIDs(op.sc))
			} else {
				err = inj.sockMap.ClearSocket(cookie)
			}
		}
		if op.serr = err; err != nil {
			return
		}
		have &^= fdMap
		if op.want {
			have |= fdMap
		}
	}
	if have&fdOpt != 0 {
		if err := inj.setHopOpts(fd, nil); err == nil {
			have &^= fdOpt
		}
	}
	inj.fds.set(fd, have)
}

// tagged reports whether packets for sc carry the option: valid spans that
// are sampled (all valid spans with Config.TagUnsampled).
func (inj *Injector) tagged(sc trace.SpanContext) bool {
	return sc.IsValid() && (sc.IsSampled() || inj.cfg.TagUnsampled)
}

// fdSet remembers which descriptors carry an option (fdOpt) or a
// SocketMap entry (fdMap) this Injector set, so untraced requests on
// untagged connections cost no syscall. A stale entry (descriptor closed and
// reused) only causes one unneeded clear; a new socket never carries an
// option it did not get from us, so a missing entry is always right.
type fdSet struct {
	mu sync.Mutex
	m  map[int]uint8
}

const (
	fdOpt uint8 = 1 << iota // sticky IPV6_HOPOPTS set
	fdMap                   // SocketMap entry set
)

func (s *fdSet) get(fd int) uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[fd]
}

func (s *fdSet) set(fd int, v uint8) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == 0 {
		delete(s.m, fd)
		return
	}
	if s.m == nil {
		s.m = map[int]uint8{}
	}
	s.m[fd] = v
}

// ControlContext fits net.Dialer.ControlContext: it sets the option for the
// span in ctx before connect, so the TCP SYN (or every UDP datagram of a
// connected socket) carries it. Without a span it does nothing.
func (inj *Injector) ControlContext(ctx context.Context, network, address string, c syscall.RawConn) error {
	sc := trace.SpanContextFromContext(ctx)
	if !inj.tagged(sc) {
		// A new socket: forget whatever an old one with this descriptor had.
		_ = c.Control(func(fd uintptr) { inj.fds.set(int(fd), 0) })
		return nil
	}
	if strings.HasSuffix(network, "4") {
		return inj.skip(ReasonIPv4, nil)
	}
	// The dialer passes a resolved "ip:port"; anything else leaves the
	// egress ids unknown.
	ap, _ := netip.ParseAddrPort(address)
	return inj.setRaw(c, sc, true, ap.Addr().Unmap())
}

// Dialer returns a copy of base (nil: a zero Dialer) whose ControlContext
// sets the option, chained after base's own ControlContext/Control.
func (inj *Injector) Dialer(base *net.Dialer) *net.Dialer {
	d := &net.Dialer{}
	if base != nil {
		*d = *base //nolint:govet // copying a Dialer value is fine (no locks)
	}
	prevCtx, prev := d.ControlContext, d.Control
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		switch {
		case prevCtx != nil:
			if err := prevCtx(ctx, network, address, c); err != nil {
				return err
			}
		case prev != nil:
			if err := prev(network, address, c); err != nil {
				return err
			}
		}
		return inj.ControlContext(ctx, network, address, c)
	}
	return d
}
