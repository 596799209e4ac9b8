//go:build linux

package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// vnetHdrLen is sizeof(struct virtio_net_hdr) prefixed by PACKET_VNET_HDR.
	vnetHdrLen = 10
	// maxFrame covers a 64 KiB GSO frame plus the vnet header.
	maxFrame = 65536 + vnetHdrLen + 64
	// queueLen bounds the frames held per direction; more are dropped.
	queueLen = 8192
)

type frame struct {
	due time.Time
	b   []byte
}

type port struct {
	name string
	f    *os.File
}

// Wire joins interfaces A and B. Frames A→B are delayed by DelayAB.
// It is safe for concurrent use.
type Wire struct {
	a, b    port
	delayAB atomic.Int64
	delayBA atomic.Int64

	fwd, drop [2]atomic.Uint64
	wg        sync.WaitGroup
	once      sync.Once
}

// Open binds packet sockets to interfaces a and b (in the caller's netns).
func Open(a, b string) (*Wire, error) {
	pa, err := openPort(a)
	if err != nil {
		return nil, err
	}
	pb, err := openPort(b)
	if err != nil {
		_ = pa.f.Close()
		return nil, err
	}
	return &Wire{a: pa, b: pb}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPort(name string) (port, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return port{}, fmt.Errorf("wire: %s: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return port{}, fmt.Errorf("wire: packet socket: %w", err)
	}
	fail := func(op string, err error) (port, error) {
		_ = unix.Close(fd)
		return port{}, fmt.Errorf("wire: %s %s: %w", op, name, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	// Frames addressed to the far end's MAC must reach us too.
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous", err)
	}
	// A non-blocking fd in an *os.File uses the runtime poller, so Close
	// unblocks a pending Read.
	return port{name: name, f: os.NewFile(uintptr(fd), "packet:"+name)}, nil
}

// SetDelay sets the delay of frames A→B and B→A.
func (w *Wire) SetDelay(ab, ba time.Duration) {
	w.delayAB.Store(int64(ab))
	w.delayBA.Store(int64(ba))
}

// Delay returns the current delays.
func (w *Wire) Delay() (ab, ba time.Duration) {
	return time.Duration(w.delayAB.Load()), time.Duration(w.delayBA.Load())
}

// Stats returns the A→B and B→A counters.
func (w *Wire) Stats() (ab, ba Stats) {
	return Stats{w.fwd[0].Load(), w.drop[0].Load()}, Stats{w.fwd[1].Load(), w.drop[1].Load()}
}

// Start copies frames in both directions until Close.
func (w *Wire) Start() {
	w.pump(0, w.a, w.b, &w.delayAB)
	w.pump(1, w.b, w.a, &w.delayBA)
}

func (w *Wire) pump(dir int, from, to port, delay *atomic.Int64) {
	q := make(chan frame, queueLen)
	w.wg.Go(func() {
		defer close(q)
		buf := make([]byte, maxFrame)
		for {
			n, err := from.f.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				// ENETDOWN and friends while a namespace goes away.
				w.drop[dir].Add(1)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			fr := frame{due: time.Now().Add(time.Duration(delay.Load())), b: append([]byte(nil), buf[:n]...)}
			select {
			case q <- fr:
			default:
				w.drop[dir].Add(1)
			}
		}
	})
	w.wg.Go(func() {
		for fr := range q {
			if d := time.Until(fr.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := to.f.Write(fr.b); err != nil {
				w.drop[dir].Add(1)
			} else {
				w.fwd[dir].Add(1)
			}
		}
	})
}

// Close stops both directions and closes the sockets. Idempotent.
func (w *Wire) Close() error {
	var err error
	w.once.Do(func() {
		err = errors.Join(w.a.f.Close(), w.b.f.Close())
		w.wg.Wait()
	})
	return err
}

// Run starts the wire and closes it when ctx is done.
func (w *Wire) Run(ctx context.Context) error {
	w.Start()
	<-ctx.Done()
	return w.Close()
}
