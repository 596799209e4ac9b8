package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/vishvananda/netns"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// kernel is the agent's handle on the node's network namespace.
type kernel struct {
	ns netns.NsHandle // netns.None(): the agent's own
}

func openKernel(path string) (*kernel, error) {
	if path == "" {
		return &kernel{ns: netns.None()}, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("netns_path: %w", err)
	}
	return &kernel{ns: ns}, nil
}

func (k *kernel) close() {
	if k.ns.IsOpen() {
		_ = k.ns.Close()
	}
}

func (k *kernel) nodeID() (uint32, error) {
	var id uint32
	err := ioam6nl.RunInNetNS(k.ns, func() error {
		var err error
		id, err = sysctl.Default.NodeID()
		return err
	})
	return id, err
}

func (k *kernel) wideNodeID() (uint64, error) {
	var id uint64
	err := ioam6nl.RunInNetNS(k.ns, func() error {
		var err error
		id, err = sysctl.Default.WideNodeID()
		return err
	})
	return id, err
}

// forwards reports net.ipv6.conf.all.forwarding of the node's namespace.
func (k *kernel) forwards() (bool, error) {
	var on bool
	err := ioam6nl.RunInNetNS(k.ns, func() error {
		var err error
		on, err = sysctl.Default.Forwarding("all")
		return err
	})
	return on, err
}

func (k *kernel) setup(ctx context.Context, s *SetupConfig) ([]string, error) {
	var conn *ioam6nl.Conn
	if len(s.Namespaces) > 0 {
		var err error
		if conn, err = ioam6nl.DialNetNS(k.ns); err != nil {
			return nil, fmt.Errorf("setup.namespaces: %w", err)
		}
		defer conn.Close()
	}
	var changed []string
	err := ioam6nl.RunInNetNS(k.ns, func() error {
		var err error
		changed, err = applySetup(ctx, s, sysctl.Default, conn)
		return err
	})
	return changed, err
}

// openSource opens the configured source; for auto it prefers the kernel's
// event group and falls back to capture, saying why.
func (k *kernel) openSource(cfg SourceConfig, m *Metrics, bad func(string)) (Source, string, error) {
	capture := func() (Source, error) {
		var s *captureSource
		err := ioam6nl.RunInNetNS(k.ns, func() error {
			var err error
			s, err = newCaptureSource(cfg, m, bad)
			return err
		})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	switch cfg.Kind {
	case SourceNetlink:
		s, err := newNetlinkSource(k.ns, cfg, m, bad)
		if err != nil {
			return nil, "", err
		}
		return s, "source.kind is netlink", nil
	case SourceCapture:
		s, err := capture()
		if err != nil {
			return nil, "", err
		}
		return s, "source.kind is capture", nil
	}
	s, nerr := newNetlinkSource(k.ns, cfg, m, bad)
	if nerr == nil {
		return s, "kernel has the ioam6_events group", nil
	}
	why := "netlink unavailable: " + nerr.Error()
	switch {
	case errors.Is(nerr, ioam6nl.ErrNoEventGroup):
		why = "kernel has IOAM6 but no ioam6_events group (Linux < 6.9)"
	case errors.Is(nerr, ioam6nl.ErrFamilyNotFound):
		why = "kernel has no IOAM6 generic netlink family"
	}
	c, cerr := capture()
	if cerr != nil {
		return nil, "", fmt.Errorf("no source: %w", errors.Join(nerr, cerr))
	}
	return c, why + "; capturing outgoing packets", nil
}
