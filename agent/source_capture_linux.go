package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// captureSource reads IOAM packets the node sends (PACKET_OUTGOING) from an
// AF_PACKET TPACKET_V3 ring: on a router that is the forwarded packet after
// this node wrote its hop (docs/wire-format.md §7). SOCK_DGRAM strips the link
// header, so the ring holds the IPv6 header onwards whatever the link type.
type captureSource struct {
	fd        int
	ring      []byte
	blockSize int
	blocks    int
	ifindex   map[int32]bool // empty: all interfaces
	m         *Metrics
	lost      prometheus.Counter
	bad       func(reason string)

	closed    atomic.Bool
	mu        sync.Mutex // guards fd and ring release
	running   bool
	released  bool
	closeOnce sync.Once
}

var _ Source = (*captureSource)(nil)

// Offsets in the ring (include/uapi/linux/if_packet.h).
const (
	blockStatusOff   = 8  // tpacket_block_desc.hdr.bh1.block_status
	blockNumPktsOff  = 12 // .num_pkts
	blockFirstPktOff = 16 // .offset_to_first_pkt
	pktNextOff       = 0  // tpacket3_hdr.tp_next_offset
	pktSecOff        = 4
	pktNsecOff       = 8
	pktSnaplenOff    = 12
	pktNetOff        = 26                     // tp_net
	sllOff           = unix.SizeofTpacket3Hdr // sockaddr_ll follows the aligned header
	sllIfindexOff    = sllOff + 4             // sll_ifindex
	sllPkttypeOff    = sllOff + 10            // sll_pkttype
	ipv6HdrLen       = 40                     // RFC 8200 §3
	ipv6NextHdrOff   = 6                      // Next Header
	nextHdrHopByHop  = 0                      // RFC 8200 §4.3
	captureSnaplen   = ipv6HdrLen + 256*8     // the largest Hop-by-Hop header
	ringRetireMillis = 10                     // block retire timeout: bounds latency at low rate
	pollMillis       = 100                    // Close is noticed within this
)

// captureFilter accepts outgoing IPv6 packets with a Hop-by-Hop header, on
// the network header (SOCK_DGRAM), with the packet type and protocol checked
// in the kernel (docs/wire-format.md §7 filters on fixed offsets instead).
// Which options the header holds is left to userspace: an
// IOAM option may follow any other option (a Router Alert, an operator's own
// IOAM option) and cBPF cannot walk a list, while other Hop-by-Hop packets
// (MLD reports) are rare. The socket itself must be ETH_P_ALL: the transmit
// path only feeds ETH_P_ALL taps (dev_queue_xmit_nit).
func captureFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 5},
		bpf.LoadExtension{Num: bpf.ExtProto},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IPV6, SkipTrue: 3},
		bpf.LoadAbsolute{Off: ipv6NextHdrOff, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: nextHdrHopByHop, SkipTrue: 1},
		bpf.RetConstant{Val: captureSnaplen},
		bpf.RetConstant{Val: 0},
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// newCaptureSource opens the ring in the calling thread's network namespace.
func newCaptureSource(cfg SourceConfig, m *Metrics, bad func(string)) (_ *captureSource, err error) {
	s := &captureSource{fd: -1, blockSize: cfg.RingBlockSize, blocks: cfg.RingBlocks, ifindex: map[int32]bool{},
		m: m, lost: m.EventsLost.WithLabelValues(SourceCapture), bad: bad}
	for _, name := range cfg.Interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("capture source: interface %s: %w", name, err)
		}
		s.ifindex[int32(ifi.Index)] = true
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("capture source: socket: %w", err)
	}
	s.fd = fd
	defer func() {
		if err != nil {
			_ = s.release()
		}
	}()
	prog, err := captureFilter()
	if err != nil {
		return nil, fmt.Errorf("capture source: filter: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return nil, fmt.Errorf("capture source: attach filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("capture source: TPACKET_V3: %w", err)
	}
	const frameSize = 1 << 11
	req := unix.TpacketReq3{
		Block_size: uint32(s.blockSize), Block_nr: uint32(s.blocks),
		Frame_size: frameSize, Frame_nr: uint32(s.blockSize / frameSize * s.blocks),
		Retire_blk_tov: ringRetireMillis,
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("capture source: rx ring: %w", err)
	}
	s.ring, err = unix.Mmap(fd, 0, s.blockSize*s.blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("capture source: mmap: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		return nil, fmt.Errorf("capture source: bind: %w", err)
	}
	return s, nil
}

func (s *captureSource) Name() string { return SourceCapture }

func (s *captureSource) blockStatus(b int) *uint32 {
	return (*uint32)(unsafe.Pointer(&s.ring[b*s.blockSize+blockStatusOff]))
}

func (s *captureSource) Run(ctx context.Context, handle func([]Event)) error {
	s.mu.Lock()
	if s.released {
		s.mu.Unlock()
		return nil
	}
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
		_ = s.release()
	}()
	stop := context.AfterFunc(ctx, func() { s.closed.Store(true) })
	defer stop()

	batch := make([]Event, 0, 256)
	pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN | unix.POLLERR}}
	lastStats := time.Now()
	for b := 0; !s.closed.Load(); {
		if time.Since(lastStats) > time.Second {
			s.readStats()
			lastStats = time.Now()
		}
		st := s.blockStatus(b)
		if atomic.LoadUint32(st)&unix.TP_STATUS_USER == 0 {
			if _, err := unix.Poll(pfd, pollMillis); err != nil && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("capture source: poll: %w", err)
			}
			continue
		}
		batch = s.readBlock(s.ring[b*s.blockSize:(b+1)*s.blockSize], batch[:0])
		if len(batch) > 0 {
			handle(batch)
		}
		atomic.StoreUint32(st, unix.TP_STATUS_KERNEL)
		b = (b + 1) % s.blocks
	}
	s.readStats()
	return nil
}

// readBlock turns the packets of one retired block into events.
func (s *captureSource) readBlock(blk []byte, out []Event) []Event {
	ne := binary.NativeEndian
	n := int(ne.Uint32(blk[blockNumPktsOff:]))
	off := int(ne.Uint32(blk[blockFirstPktOff:]))
	for i := 0; i < n && off+sllPkttypeOff < len(blk); i++ {
		p := blk[off:]
		next := int(ne.Uint32(p[pktNextOff:]))
		if len(s.ifindex) == 0 || s.ifindex[int32(ne.Uint32(p[sllIfindexOff:]))] {
			snap := int(ne.Uint32(p[pktSnaplenOff:]))
			nh := int(ne.Uint16(p[pktNetOff:]))
			if nh+snap <= len(p) {
				seen := int64(ne.Uint32(p[pktSecOff:]))*1e9 + int64(ne.Uint32(p[pktNsecOff:]))
				out = s.options(p[nh:nh+snap], seen, out)
			} else {
				s.bad(ReasonPacket)
			}
		}
		if next == 0 {
			break
		}
		off += next
	}
	return out
}

// options appends an event for every IOAM option in an IPv6 packet's
// Hop-by-Hop header (each namespace is decoded, or counted, on its own). A
// header without IOAM is skipped uncounted; a malformed one is counted once,
// after the events of the IOAM options before the fault.
func (s *captureSource) options(pkt []byte, seen int64, out []Event) []Event {
	if len(pkt) < ipv6HdrLen || pkt[ipv6NextHdrOff] != nextHdrHopByHop {
		s.bad(ReasonPacket)
		return out
	}
	hbh := pkt[ipv6HdrLen:]
	opt, off, err := ioam6.FindIOAMOption(hbh)
	for ; err == nil; opt, off, err = ioam6.NextIOAMOption(hbh, off+len(opt)) {
		out = append(out, Event{Option: opt, SeenUnixNano: seen})
	}
	if !errors.Is(err, ioam6.ErrNotFound) {
		s.bad(reasonOf(err))
	}
	return out
}

// readStats adds the kernel's ring drops since the last call (reading resets them).
func (s *captureSource) readStats() {
	st, err := unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err == nil && st.Drops > 0 {
		s.lost.Add(float64(st.Drops))
	}
}

// release unmaps the ring and closes the socket once.
func (s *captureSource) release() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil
	}
	s.released = true
	var errs []error
	if s.ring != nil {
		errs = append(errs, unix.Munmap(s.ring))
		s.ring = nil
	}
	if s.fd >= 0 {
		errs = append(errs, unix.Close(s.fd))
		s.fd = -1
	}
	return errors.Join(errs...)
}

// Close stops Run within pollMillis; Run releases the ring. Without a
// running Run it releases it now. Idempotent.
func (s *captureSource) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.mu.Lock()
		running := s.running
		s.mu.Unlock()
		if !running {
			err = s.release()
		}
	})
	return err
}
