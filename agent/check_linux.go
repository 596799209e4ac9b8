package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cross-layer-telemetry/clt/kernel/bpfinsert"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6"
	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// Capability numbers (include/uapi/linux/capability.h).
const (
	capNetAdmin = 12
	capNetRaw   = 13
	capSysAdmin = 21
)

// checkHBHSlots is the pre-allocation assumed for the MTU headroom check: the
// encapsulator's default type (oss, 0xF00000 + bit 22) with room for four hops.
const checkHBHSlots = 4

type checker struct {
	w       io.Writer
	missing int
}

func (c *checker) ok(format string, a ...any)   { fmt.Fprintf(c.w, "ok       "+format+"\n", a...) }
func (c *checker) warn(format string, a ...any) { fmt.Fprintf(c.w, "warn     "+format+"\n", a...) }
func (c *checker) miss(format string, a ...any) {
	c.missing++
	fmt.Fprintf(c.w, "MISSING  "+format+"\n", a...)
}

// Check prints the node's IOAM state as the agent would use it and what is
// missing; it returns ErrCheckFailed when anything required is missing.
func Check(ctx context.Context, cfg Config, w io.Writer) error {
	c := &checker{w: w}
	checkKernel(c)
	checkCaps(c, cfg)
	k, err := openKernel(cfg.NetNSPath)
	if err != nil {
		c.miss("netns_path %s: %v", cfg.NetNSPath, err)
		return ErrCheckFailed
	}
	defer k.close()

	conn, err := ioam6nl.DialNetNS(k.ns)
	// capture: the agent will read packets (configured, or auto without the
	// event group, which it falls back from).
	capture := cfg.Source.Kind == SourceCapture || (cfg.Source.Kind == SourceAuto && (err != nil || !conn.HasEvents()))
	switch {
	case errors.Is(err, ioam6nl.ErrFamilyNotFound):
		c.miss("IOAM6 generic netlink family (CONFIG_IPV6_IOAM6? Linux >= 5.15)")
	case err != nil:
		c.miss("IOAM6 generic netlink: %v", err)
	default:
		defer conn.Close()
		c.ok("IOAM6 generic netlink family")
		if conn.HasEvents() {
			c.ok("ioam6_events multicast group (netlink source available)")
		} else if cfg.Source.Kind == SourceNetlink {
			c.miss("ioam6_events group (Linux >= 6.9) but source.kind is netlink")
		} else {
			c.warn("no ioam6_events group (Linux < 6.9): the agent will capture packets (CAP_NET_RAW)")
		}
		checkNamespaces(ctx, c, cfg, conn)
	}
	err = ioam6nl.RunInNetNS(k.ns, func() error {
		checkSysctls(c, cfg)
		if capture {
			checkCaptureRole(c, sysctl.Default)
		}
		return nil
	})
	if err != nil {
		c.miss("enter netns %s: %v", cfg.NetNSPath, err)
	}
	if cfg.Insert != nil {
		_ = ioam6nl.RunInNetNS(k.ns, func() error { checkInsert(c, *cfg.Insert); return nil })
	}
	if c.missing > 0 {
		fmt.Fprintf(w, "%d item(s) missing\n", c.missing)
		return ErrCheckFailed
	}
	fmt.Fprintln(w, "node ready")
	return nil
}

func kernelVersion(release string) (major, minor, patch int) {
	parts := strings.SplitN(release, "-", 2)
	nums := strings.Split(parts[0], ".")
	v := [3]int{}
	for i := 0; i < len(nums) && i < 3; i++ {
		// Leading digits only: "11+" (dirty tree) is 11.
		d := strings.IndexFunc(nums[i], func(r rune) bool { return r < '0' || r > '9' })
		if d < 0 {
			d = len(nums[i])
		}
		v[i], _ = strconv.Atoi(nums[i][:d])
	}
	return v[0], v[1], v[2]
}

func checkKernel(c *checker) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		c.warn("kernel version: %v", err)
		return
	}
	rel := unix.ByteSliceToString(u.Release[:])
	maj, min, pat := kernelVersion(rel)
	v := maj*1_000_000 + min*1_000 + pat
	switch {
	case v < 5_015_000:
		c.miss("kernel %s: IOAM needs Linux >= 5.15", rel)
	case v < 6_009_000:
		c.warn("kernel %s: no ioam6_events before Linux 6.9 (capture source only)", rel)
	default:
		c.ok("kernel %s", rel)
	}
	// CVE-2026-64132 (use-after-free around ioam6_event, docs/wire-format.md §10).
	if (v >= 6_009_000 && v < 6_012_092) || (v >= 6_013_000 && v < 6_018_034) || (v >= 6_019_000 && v < 7_000_011) {
		c.warn("kernel %s is in the CVE-2026-64132 range (ioam6_event use-after-free); update when you can", rel)
	}
}

// effectiveCaps reads CapEff of this process.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

func checkCaps(c *checker, cfg Config) {
	caps, err := effectiveCaps()
	if err != nil {
		c.warn("capabilities: %v", err)
		return
	}
	has := func(n int) bool { return caps&(1<<n) != 0 }
	if has(capNetAdmin) {
		c.ok("CAP_NET_ADMIN (ioam6_events, node setup)")
	} else {
		c.miss("CAP_NET_ADMIN: needed to join ioam6_events and for node setup")
	}
	switch {
	case has(capNetRaw):
		c.ok("CAP_NET_RAW (capture source)")
	case cfg.Source.Kind == SourceCapture:
		c.miss("CAP_NET_RAW: needed by source.kind capture")
	default:
		c.warn("no CAP_NET_RAW: the capture fallback will not work")
	}
	if cfg.NetNSPath != "" && !has(capSysAdmin) {
		c.miss("CAP_SYS_ADMIN: needed to enter netns_path %s", cfg.NetNSPath)
	}
}

func checkNamespaces(ctx context.Context, c *checker, cfg Config, conn *ioam6nl.Conn) {
	have, err := conn.Namespaces(ctx)
	if err != nil {
		c.miss("list IOAM namespaces: %v", err)
		return
	}
	known := map[uint16]ioam6nl.Namespace{}
	for _, ns := range have {
		known[ns.ID] = ns
	}
	if len(cfg.Namespaces) == 0 {
		c.miss("namespaces: none configured; the agent cannot decode any event")
	}
	for _, want := range cfg.Namespaces {
		if _, ok := known[uint16(want.ID)]; ok {
			c.ok("IOAM namespace %d in the kernel (carrier %s)", want.ID, orDefault(want.Carrier, CarrierOSS))
			continue
		}
		planned := false
		if cfg.Setup != nil {
			for _, s := range cfg.Setup.Namespaces {
				planned = planned || s.ID == want.ID
			}
		}
		if planned {
			c.warn("IOAM namespace %d not in the kernel yet; setup will add it", want.ID)
		} else {
			c.miss("IOAM namespace %d: not in the kernel (ip ioam namespace add %d, or setup.namespaces)", want.ID, want.ID)
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func checkSysctls(c *checker, cfg Config) {
	sc := sysctl.Default
	id, err := sc.NodeID()
	switch {
	case err != nil:
		c.miss("net.ipv6.ioam6_id: %v", err)
	case id == sysctl.DefaultNodeID && (cfg.Setup == nil || cfg.Setup.NodeID == nil):
		c.miss("net.ipv6.ioam6_id is unset (0xffffff): set it or setup.node_id")
	default:
		c.ok("net.ipv6.ioam6_id = %d", id)
	}
	if wid, err := sc.WideNodeID(); err == nil {
		if wid == sysctl.DefaultWideNodeID {
			c.warn("net.ipv6.ioam6_id_wide is unset (only matters for trace bit 8)")
		} else {
			c.ok("net.ipv6.ioam6_id_wide = %d", wid)
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		c.miss("list interfaces: %v", err)
		return
	}
	hbh, _ := ioam6.HBHSpec{
		Type:  ioam6.BitHopLimitNodeID | ioam6.BitIfIDs | ioam6.BitTimestampSec | ioam6.BitTimestampFrac,
		Slots: checkHBHSlots, Carrier: ioam6.CarrierConfig{Carrier: ioam6.CarrierOSS},
	}.Len()
	enabled := 0
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		st, err := sc.Interface(ifi.Name)
		if err != nil {
			continue // no IPv6 on it
		}
		line := fmt.Sprintf("%s: ioam6_enabled=%t ioam6_id=%d mtu=%d", ifi.Name, st.Enabled, st.ID, ifi.MTU)
		if st.Enabled {
			enabled++
			c.ok("%s", line)
		} else {
			c.warn("%s (packets arriving here are not IOAM-processed)", line)
		}
		// The HBH rides inside the MTU: a sender that assumes IPv6's minimum
		// MTU (1280) would need more than this link carries.
		if room := ifi.MTU - hbh; room < 1280 {
			c.warn("%s: MTU %d minus a %d B IOAM HBH (%d slots) is %d, below IPv6's 1280 minimum: senders rely on PMTU discovery",
				ifi.Name, ifi.MTU, hbh, checkHBHSlots, room)
		}
	}
	if cfg.Setup != nil {
		for _, want := range cfg.Setup.Interfaces {
			if _, err := sc.Interface(want.Name); err != nil {
				c.miss("setup.interfaces %s: %v", want.Name, err)
			}
		}
	}
	if enabled == 0 && (cfg.Setup == nil || len(cfg.Setup.Interfaces) == 0) {
		c.miss("no interface has ioam6_enabled=1: the kernel processes no IOAM here")
	}
}

// checkCaptureRole reports a capture source on a node that does not
// forward: capture reads packets this node sends (the egress copy, after its
// own write), so a destination host sees none of the traffic it receives.
func checkCaptureRole(c *checker, sc *sysctl.Sysctl) {
	fwd, err := sc.Forwarding("all")
	switch {
	case err != nil:
		c.warn("net.ipv6.conf.all.forwarding: %v", err)
	case !fwd:
		c.miss("%s", captureOnHostProblem)
	default:
		c.ok("net.ipv6.conf.all.forwarding = 1 (capture reads forwarded packets)")
	}
}

// checkInsert: the insert block's program loads and attaches here (BPF,
// tcx links, CAP_BPF + CAP_NET_ADMIN) and its interfaces
// exist in the node's namespace.
func checkInsert(c *checker, cfg bpfinsert.Config) {
	if err := bpfinsert.Check(); err != nil {
		c.miss("insert: eBPF inserter cannot run: %v", err)
		return
	}
	c.ok("insert: eBPF inserter loads and attaches (tcx)")
	for _, name := range cfg.Interfaces {
		if _, err := net.InterfaceByName(name); err != nil {
			c.miss("insert: interface %s: %v", name, err)
		} else {
			c.ok("insert: interface %s", name)
		}
	}
	if cfg.SocketMapPin != "" {
		checkBPFFS(c, filepath.Dir(cfg.SocketMapPin))
	}
}

// checkBPFFS: the socket map's pin directory is, or can be made, on a bpf
// filesystem (its nearest existing ancestor is one).
func checkBPFFS(c *checker, dir string) {
	for d := dir; ; d = filepath.Dir(d) {
		var fs unix.Statfs_t
		if err := unix.Statfs(d, &fs); err == nil {
			if fs.Type == unix.BPF_FS_MAGIC {
				c.ok("insert: socket_map_pin: %s is on a bpf filesystem", d)
			} else {
				c.miss("insert: socket_map_pin: %s is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf)", d)
			}
			return
		}
		if d == "/" || d == "." {
			c.miss("insert: socket_map_pin: no existing directory above %s", dir)
			return
		}
	}
}
