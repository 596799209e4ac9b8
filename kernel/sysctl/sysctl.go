package sysctl

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultRoot is where Linux mounts the sysctl tree.
const DefaultRoot = "/proc/sys"

// Kernel defaults, i.e. "unset" (include/linux/ioam6.h IOAM6_DEFAULT_*).
const (
	DefaultNodeID          = 0xFFFFFF
	DefaultWideNodeID      = 0xFFFFFFFFFFFFFF
	DefaultInterfaceID     = 0xFFFF
	DefaultWideInterfaceID = 0xFFFFFFFF
)

// ErrOutOfRange is wrapped by *RangeError.
var ErrOutOfRange = errors.New("out of range")

// ErrInvalidInterface means an interface name cannot be a sysctl path element.
var ErrInvalidInterface = errors.New("invalid interface name")

// RangeError reports a value outside a key's allowed range.
type RangeError struct {
	Key      string // dotted sysctl name, e.g. net.ipv6.ioam6_id
	Value    string // decimal, as given
	Min, Max int64
}

// Error implements error.
func (e *RangeError) Error() string {
	return fmt.Sprintf("sysctl: %s = %s out of range [%d, %d]", e.Key, e.Value, e.Min, e.Max)
}

// Unwrap lets errors.Is(err, ErrOutOfRange) match.
func (e *RangeError) Unwrap() error { return ErrOutOfRange }

// keyRange describes one sysctl and its allowed values; ranges follow the
// kernel's extra1/extra2 bounds.
type keyRange struct {
	suffix   string // path under net.ipv6 (global) or net.ipv6.conf.<if> (per interface)
	min, max int64
}

var (
	keyNodeID       = keyRange{"ioam6_id", 0, 0xFFFFFF}
	keyWideNodeID   = keyRange{"ioam6_id_wide", 0, 0xFFFFFFFFFFFFFF}
	keyMaxHBHOpts   = keyRange{"max_hbh_opts_number", math.MinInt32, math.MaxInt32}
	keyIfEnabled    = keyRange{"ioam6_enabled", 0, 1}
	keyIfID         = keyRange{"ioam6_id", 0, 0xFFFF}
	keyIfWideID     = keyRange{"ioam6_id_wide", 0, 0xFFFFFFFF}
	keyIfForwarding = keyRange{"forwarding", 0, 1}
	keyIfAcceptDAD  = keyRange{"accept_dad", 0, 2}
)

// Sysctl accesses the IPv6 IOAM sysctls under Root. The zero value uses
// DefaultRoot. A Sysctl holds no state; it is safe for concurrent use.
type Sysctl struct {
	// Root is the sysctl mount point; tests point it at a temporary tree.
	Root string
}

// Default acts on /proc/sys (the calling thread's network namespace).
var Default = &Sysctl{}

func (s *Sysctl) root() string {
	if s == nil || s.Root == "" {
		return DefaultRoot
	}
	return s.Root
}

// InterfaceConfig is the per-interface IOAM state.
type InterfaceConfig struct {
	Enabled bool
	ID      uint16
	WideID  uint32
}

// NodeID returns net.ipv6.ioam6_id.
func (s *Sysctl) NodeID() (uint32, error) {
	v, err := s.get(globalName(keyNodeID))
	return uint32(v), err
}

// SetNodeID writes net.ipv6.ioam6_id (0..0xFFFFFF).
func (s *Sysctl) SetNodeID(id uint32) error {
	return s.set(globalName(keyNodeID), keyNodeID, int64(id))
}

// WideNodeID returns net.ipv6.ioam6_id_wide.
func (s *Sysctl) WideNodeID() (uint64, error) {
	v, err := s.get(globalName(keyWideNodeID))
	return uint64(v), err
}

// SetWideNodeID writes net.ipv6.ioam6_id_wide (0..0xFFFFFFFFFFFFFF).
func (s *Sysctl) SetWideNodeID(id uint64) error {
	if id > uint64(keyWideNodeID.max) {
		k := keyWideNodeID
		return &RangeError{Key: globalName(k), Value: strconv.FormatUint(id, 10), Min: k.min, Max: k.max}
	}
	return s.set(globalName(keyWideNodeID), keyWideNodeID, int64(id))
}

// MaxHBHOptsNumber returns net.ipv6.max_hbh_opts_number.
func (s *Sysctl) MaxHBHOptsNumber() (int, error) {
	v, err := s.get(globalName(keyMaxHBHOpts))
	return int(v), err
}

// SetMaxHBHOptsNumber writes net.ipv6.max_hbh_opts_number. Every node on the
// path needs it when an HBH carries more than 8 non-padding options.
func (s *Sysctl) SetMaxHBHOptsNumber(n int) error {
	return s.set(globalName(keyMaxHBHOpts), keyMaxHBHOpts, int64(n))
}

// Interface returns the IOAM settings of interface ifname.
func (s *Sysctl) Interface(ifname string) (InterfaceConfig, error) {
	var c InterfaceConfig
	en, err := s.ifGet(ifname, keyIfEnabled)
	if err != nil {
		return c, err
	}
	id, err := s.ifGet(ifname, keyIfID)
	if err != nil {
		return c, err
	}
	wide, err := s.ifGet(ifname, keyIfWideID)
	if err != nil {
		return c, err
	}
	return InterfaceConfig{Enabled: en != 0, ID: uint16(id), WideID: uint32(wide)}, nil
}

// SetInterface writes the three IOAM settings of interface ifname.
func (s *Sysctl) SetInterface(ifname string, c InterfaceConfig) error {
	if err := s.SetInterfaceID(ifname, c.ID); err != nil {
		return err
	}
	if err := s.SetInterfaceWideID(ifname, c.WideID); err != nil {
		return err
	}
	return s.SetInterfaceEnabled(ifname, c.Enabled)
}

// SetInterfaceEnabled writes net.ipv6.conf.<ifname>.ioam6_enabled. Linux
// checks the *ingress* interface's flag.
func (s *Sysctl) SetInterfaceEnabled(ifname string, on bool) error {
	var v int64
	if on {
		v = 1
	}
	return s.ifSet(ifname, keyIfEnabled, v)
}

// SetInterfaceID writes net.ipv6.conf.<ifname>.ioam6_id (0..0xFFFF).
func (s *Sysctl) SetInterfaceID(ifname string, id uint16) error {
	return s.ifSet(ifname, keyIfID, int64(id))
}

// SetInterfaceWideID writes net.ipv6.conf.<ifname>.ioam6_id_wide (0..0xFFFFFFFF).
func (s *Sysctl) SetInterfaceWideID(ifname string, id uint32) error {
	return s.ifSet(ifname, keyIfWideID, int64(id))
}

// Forwarding returns net.ipv6.conf.<ifname>.forwarding ("all" for the
// namespace-wide switch).
func (s *Sysctl) Forwarding(ifname string) (bool, error) {
	v, err := s.ifGet(ifname, keyIfForwarding)
	return v != 0, err
}

// SetForwarding writes net.ipv6.conf.<ifname>.forwarding.
func (s *Sysctl) SetForwarding(ifname string, on bool) error {
	var v int64
	if on {
		v = 1
	}
	return s.ifSet(ifname, keyIfForwarding, v)
}

// SetAcceptDAD writes net.ipv6.conf.<ifname>.accept_dad (0: no duplicate
// address detection, 1: DAD, 2: DAD and disable IPv6 on duplicate MAC-based
// link-local). "default" applies to interfaces created afterwards.
func (s *Sysctl) SetAcceptDAD(ifname string, v int) error {
	return s.ifSet(ifname, keyIfAcceptDAD, int64(v))
}

// Get reads any integer sysctl by dotted name (e.g. "net.ipv6.ioam6_id").
func (s *Sysctl) Get(name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	return s.get(name)
}

func globalName(k keyRange) string { return "net.ipv6." + k.suffix }

func (s *Sysctl) ifGet(ifname string, k keyRange) (int64, error) {
	if err := CheckInterfaceName(ifname); err != nil {
		return 0, err
	}
	return s.get("net.ipv6.conf." + ifname + "." + k.suffix)
}

func (s *Sysctl) ifSet(ifname string, k keyRange, v int64) error {
	if err := CheckInterfaceName(ifname); err != nil {
		return err
	}
	return s.set("net.ipv6.conf."+ifname+"."+k.suffix, k, v)
}

// CheckInterfaceName reports whether ifname can be a sysctl path element:
// 1..15 bytes (IFNAMSIZ-1), no '/', no whitespace, not "." or "..".
// Interface names may contain '.', which sysctl paths keep as is.
func CheckInterfaceName(ifname string) error {
	switch {
	case ifname == "", len(ifname) > 15:
		return fmt.Errorf("sysctl: %w %q: length must be 1..15", ErrInvalidInterface, ifname)
	case ifname == "." || ifname == "..", strings.ContainsAny(ifname, "/ \t\n\x00"):
		return fmt.Errorf("sysctl: %w %q", ErrInvalidInterface, ifname)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || strings.Contains(name, "/") || strings.Contains(name, "..") {
		return fmt.Errorf("sysctl: invalid key %q", name)
	}
	return nil
}

// path maps a dotted name to a file. Interface names may contain dots, so
// only the fixed prefix is split; the interface element is kept intact.
func (s *Sysctl) path(name string) string {
	const conf = "net.ipv6.conf."
	if rest, ok := strings.CutPrefix(name, conf); ok {
		if i := strings.LastIndexByte(rest, '.'); i > 0 {
			return filepath.Join(s.root(), "net", "ipv6", "conf", rest[:i], rest[i+1:])
		}
	}
	return filepath.Join(s.root(), filepath.Join(strings.Split(name, ".")...))
}

func (s *Sysctl) get(name string) (int64, error) {
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return 0, fmt.Errorf("sysctl: read %s: %w", name, err)
	}
	str := strings.TrimSpace(string(b))
	// ioam6_id_wide may exceed int64 only if the kernel changes; parse
	// unsigned first so 56-bit values always fit.
	if u, err := strconv.ParseUint(str, 10, 64); err == nil {
		if u > math.MaxInt64 {
			return 0, fmt.Errorf("sysctl: read %s: value %s exceeds int64", name, str)
		}
		return int64(u), nil
	}
	v, err := strconv.ParseInt(str, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysctl: read %s: parse %q: %w", name, str, err)
	}
	return v, nil
}

func (s *Sysctl) set(name string, k keyRange, v int64) error {
	if v < k.min || v > k.max {
		return &RangeError{Key: name, Value: strconv.FormatInt(v, 10), Min: k.min, Max: k.max}
	}
	f, err := os.OpenFile(s.path(name), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysctl: write %s: %w", name, err)
	}
	_, werr := f.WriteString(strconv.FormatInt(v, 10) + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("sysctl: write %s=%d: %w", name, v, err)
	}
	return nil
}
