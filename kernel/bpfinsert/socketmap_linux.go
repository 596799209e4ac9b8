package bpfinsert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
)

// DefaultSocketMapPin is the documented place of the per-socket map: where
// clt-agent pins it with `insert.socket_map_pin: /sys/fs/bpf/clt/sockets`
// and where applications open it (kernel/clt's Settings.SocketMap).
const DefaultSocketMapPin = "/sys/fs/bpf/clt/sockets"

// socketMapRecheck is how often a SocketMap looks at its pin again (a
// restarted agent pins a new map; a stopped one removes the pin).
var socketMapRecheck = 5 * time.Second

// pin pins the socket map at path, replacing what a crashed agent left
// there; the directory is created on a bpf filesystem only.
func (in *Inserter) pin(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bpfinsert: socket_map_pin: %w (is a bpf filesystem mounted? mount -t bpf bpf /sys/fs/bpf)", err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("bpfinsert: socket_map_pin: %w", err)
	}
	if fs.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("bpfinsert: socket_map_pin: %s is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)", dir)
	}
	if err := os.Remove(path); err == nil {
		in.logger.Info("bpf inserter replaced a stale socket map pin", "path", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bpfinsert: socket_map_pin: %w", err)
	}
	if err := in.coll.Maps["clt_socks"].Pin(path); err != nil {
		return fmt.Errorf("bpfinsert: socket_map_pin: %w", err)
	}
	in.pinned = path
	return nil
}

// unpin removes the pin if it is still ours (another inserter may have
// replaced it since).
func (in *Inserter) unpin() error {
	if in.pinned == "" {
		return nil
	}
	path := in.pinned
	in.pinned = ""
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return nil // gone already
	}
	defer m.Close()
	mine, err1 := mapID(m)
	ours, err2 := mapID(in.coll.Maps["clt_socks"])
	if err1 != nil || err2 != nil || mine != ours {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("bpfinsert: unpin socket map: %w", err)
	}
	return nil
}

func mapID(m *ebpf.Map) (ebpf.MapID, error) {
	info, err := m.Info()
	if err != nil {
		return 0, err
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("no map id")
	}
	return id, nil
}

// sockValue is a socket's entry for ids set through the API: tagged, its
// requests not parsed, short when the upper half of the trace ID is zero.
func sockValue(ids ioam6.IDs) bpfSock {
	var s bpfSock
	copy(s.IDs[:16], ids.TraceID[:])
	copy(s.IDs[16:], ids.SpanID[:])
	s.Flags = sockTag | sockAPI
	if ids.Short {
		s.Flags |= sockShort
	}
	return s
}

// SocketMap is the per-socket map of a running inserter, opened from its
// pin by an application: setting a socket's IDs costs one bpf(2) map update
// instead of a setsockopt(IPV6_HOPOPTS). Keys are socket cookies
// (SO_COOKIE, [SocketCookie]). Safe for concurrent use.
type SocketMap struct {
	path string

	mu      sync.Mutex
	m       *ebpf.Map // nil while no inserter has the pin
	ino     uint64
	checked time.Time
}

// OpenSocketMap opens the map pinned at path (DefaultSocketMapPin by
// convention). It fails when nothing is pinned there (no inserter runs
// with socket_map_pin) or the pin is not an inserter's socket map.
func OpenSocketMap(path string) (*SocketMap, error) {
	s := &SocketMap{path: path}
	if err := s.open(); err != nil {
		return nil, err
	}
	s.checked = time.Now()
	return s, nil
}

func (s *SocketMap) open() error {
	var st unix.Stat_t
	if err := unix.Stat(s.path, &st); err != nil {
		return fmt.Errorf("bpfinsert: socket map %s: %w", s.path, err)
	}
	m, err := ebpf.LoadPinnedMap(s.path, nil)
	if err != nil {
		return fmt.Errorf("bpfinsert: socket map %s: %w", s.path, err)
	}
	if m.Type() != ebpf.LRUHash || m.KeySize() != 8 || int(m.ValueSize()) != binary.Size(bpfSock{}) {
		m.Close()
		return fmt.Errorf("bpfinsert: socket map %s: %v with %d-byte keys and %d-byte values is not an inserter's socket map",
			s.path, m.Type(), m.KeySize(), m.ValueSize())
	}
	if s.m != nil {
		s.m.Close()
	}
	s.m, s.ino = m, st.Ino
	return nil
}

// Loaded reports whether an inserter still has the map pinned. It looks at
// the pin at most every 5 s (reopening a map a restarted agent pinned
// anew); in between it answers from memory. A crashed agent's pin stays
// until the agent restarts and replaces it.
func (s *SocketMap) Loaded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recheck()
	return s.m != nil
}

func (s *SocketMap) recheck() {
	now := time.Now()
	if now.Sub(s.checked) < socketMapRecheck {
		return
	}
	s.checked = now
	var st unix.Stat_t
	if err := unix.Stat(s.path, &st); err != nil {
		if s.m != nil {
			s.m.Close()
			s.m = nil
		}
		return
	}
	if s.m != nil && st.Ino == s.ino {
		return
	}
	if err := s.open(); err != nil && s.m != nil {
		s.m.Close()
		s.m = nil
	}
}

// errNotLoaded: the pin is gone.
var errNotLoaded = errors.New("bpfinsert: socket map not loaded (no inserter has it pinned)")

// SetSocket sets the IDs the socket's packets carry until the next
// SetSocket or ClearSocket; meanwhile the program parses none of its
// requests (the application owns the socket's tagging).
func (s *SocketMap) SetSocket(cookie uint64, ids ioam6.IDs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recheck()
	if s.m == nil {
		return errNotLoaded
	}
	v := sockValue(ids)
	if err := s.m.Put(cookie, &v); err != nil {
		return fmt.Errorf("bpfinsert: set socket: %w", err)
	}
	return nil
}

// ClearSocket removes a socket's IDs; a socket without an entry is fine.
func (s *SocketMap) ClearSocket(cookie uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recheck()
	if s.m == nil {
		return nil // no program: nothing tags it
	}
	if err := s.m.Delete(cookie); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpfinsert: clear socket: %w", err)
	}
	return nil
}

// Close releases the map (the pin stays: it is the agent's).
func (s *SocketMap) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		s.m.Close()
		s.m = nil
	}
	s.checked = time.Now().Add(100 * 365 * 24 * time.Hour) // never reopen
	return nil
}

// SocketCookie returns the socket's cookie (SO_COOKIE), the map's key.
func SocketCookie(rc syscall.RawConn) (uint64, error) {
	var cookie uint64
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		return 0, fmt.Errorf("bpfinsert: socket cookie: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("bpfinsert: socket cookie: %w", serr)
	}
	return cookie, nil
}
