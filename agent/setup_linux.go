package agent

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cross-layer-telemetry/clt/kernel/ioam6nl"
	"github.com/cross-layer-telemetry/clt/kernel/sysctl"
)

// applySetup brings the node to the setup block's state and returns what it
// changed. It only writes what differs, so running it again changes nothing.
// It must run in the target network namespace (sysctls are read through
// /proc/sys of the calling thread); conn must be dialled there too.
func applySetup(ctx context.Context, s *SetupConfig, sc *sysctl.Sysctl, conn *ioam6nl.Conn) ([]string, error) {
	var changed []string
	note := func(format string, a ...any) { changed = append(changed, fmt.Sprintf(format, a...)) }

	if s.NodeID != nil {
		cur, err := sc.NodeID()
		if err != nil {
			return changed, fmt.Errorf("setup.node_id: %w", err)
		}
		if cur != *s.NodeID {
			if err := sc.SetNodeID(*s.NodeID); err != nil {
				return changed, fmt.Errorf("setup.node_id: %w", err)
			}
			note("net.ipv6.ioam6_id=%d", *s.NodeID)
		}
	}
	if s.NodeIDWide != nil {
		cur, err := sc.WideNodeID()
		if err != nil {
			return changed, fmt.Errorf("setup.node_id_wide: %w", err)
		}
		if cur != *s.NodeIDWide {
			if err := sc.SetWideNodeID(*s.NodeIDWide); err != nil {
				return changed, fmt.Errorf("setup.node_id_wide: %w", err)
			}
			note("net.ipv6.ioam6_id_wide=%d", *s.NodeIDWide)
		}
	}
	if len(s.Namespaces) > 0 {
		c, err := setupNamespaces(ctx, s.Namespaces, conn)
		changed = append(changed, c...)
		if err != nil {
			return changed, err
		}
	}
	for i, ifc := range s.Interfaces {
		cur, err := sc.Interface(ifc.Name)
		if err != nil {
			return changed, fmt.Errorf("setup.interfaces[%d] (%s): %w", i, ifc.Name, err)
		}
		want := cur
		want.Enabled = ifc.Enabled == nil || *ifc.Enabled
		if ifc.ID != nil {
			want.ID = uint16(*ifc.ID)
		}
		if ifc.IDWide != nil {
			want.WideID = *ifc.IDWide
		}
		if want != cur {
			if err := sc.SetInterface(ifc.Name, want); err != nil {
				return changed, fmt.Errorf("setup.interfaces[%d] (%s): %w", i, ifc.Name, err)
			}
			note("net.ipv6.conf.%s: ioam6_enabled=%t ioam6_id=%d ioam6_id_wide=%d", ifc.Name, want.Enabled, want.ID, want.WideID)
		}
	}
	return changed, nil
}

func eqU32(a, b *uint32) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func eqU64(a, b *uint64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func setupNamespaces(ctx context.Context, want []SetupNamespace, conn *ioam6nl.Conn) ([]string, error) {
	var changed []string
	have, err := conn.Namespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup.namespaces: %w", err)
	}
	schemas, err := conn.Schemas(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup.namespaces: %w", err)
	}
	for i, w := range want {
		id := uint16(w.ID)
		var cur *ioam6nl.Namespace
		for j := range have {
			if have[j].ID == id {
				cur = &have[j]
			}
		}
		if cur != nil && (!eqU32(cur.Data, w.Data) || !eqU64(cur.DataWide, w.DataWide)) {
			// The kernel cannot change a namespace's data in place.
			if err := conn.DeleteNamespace(ctx, id); err != nil {
				return changed, fmt.Errorf("setup.namespaces[%d]: %w", i, err)
			}
			cur = nil
		}
		if cur == nil {
			if err := conn.AddNamespace(ctx, ioam6nl.Namespace{ID: id, Data: w.Data, DataWide: w.DataWide}); err != nil {
				return changed, fmt.Errorf("setup.namespaces[%d]: %w", i, err)
			}
			changed = append(changed, fmt.Sprintf("ioam namespace %d added", id))
		}
		if w.Schema == nil {
			continue
		}
		data, _ := decodeHex(w.Schema.Data) // validated
		var curSc *ioam6nl.Schema
		for j := range schemas {
			if schemas[j].ID == w.Schema.ID {
				curSc = &schemas[j]
			}
		}
		if curSc != nil && !bytes.Equal(curSc.Data, data) {
			if err := conn.DeleteSchema(ctx, w.Schema.ID); err != nil {
				return changed, fmt.Errorf("setup.namespaces[%d].schema: %w", i, err)
			}
			curSc = nil
		}
		if curSc == nil {
			if err := conn.AddSchema(ctx, ioam6nl.Schema{ID: w.Schema.ID, Data: data}); err != nil {
				return changed, fmt.Errorf("setup.namespaces[%d].schema: %w", i, err)
			}
			changed = append(changed, fmt.Sprintf("ioam schema %d added", w.Schema.ID))
		}
		attached := cur != nil && cur.SchemaID != nil && *cur.SchemaID == w.Schema.ID && curSc != nil
		if !attached {
			if err := conn.SetNamespaceSchema(ctx, id, w.Schema.ID); err != nil {
				return changed, fmt.Errorf("setup.namespaces[%d].schema: %w", i, err)
			}
			changed = append(changed, fmt.Sprintf("ioam schema %d attached to namespace %d", w.Schema.ID, id))
		}
	}
	return changed, nil
}
