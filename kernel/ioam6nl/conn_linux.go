package ioam6nl

import (
	"context"
	"fmt"
	"sync"

	"github.com/vishvananda/netns"

	"github.com/cross-layer-telemetry/clt/kernel/internal/nlmsg"
)

// Conn manages IOAM namespaces and schemas of one network namespace. Methods
// are safe for concurrent use (requests are serialised). Errors wrap the
// kernel's errno: errors.Is(err, os.ErrExist) for an existing namespace or
// schema, os.ErrNotExist (ENOENT) for a missing one, os.ErrPermission
// without CAP_NET_ADMIN.
type Conn struct {
	mu        sync.Mutex
	s         *sock
	closeOnce sync.Once
	closeErr  error
}

// Dial opens a configuration connection in the calling thread's network
// namespace.
func Dial() (*Conn, error) { return DialNetNS(netns.None()) }

// DialNetNS opens a configuration connection in network namespace ns (not
// open, e.g. netns.None(): the calling thread's).
func DialNetNS(ns netns.NsHandle) (*Conn, error) {
	s, err := openSock(ns, nil)
	if err != nil {
		return nil, err
	}
	return &Conn{s: s}, nil
}

// DialPath opens a configuration connection in the network namespace at path
// (e.g. /var/run/netns/NAME or /proc/PID/ns/net); "" means the calling
// thread's.
func DialPath(path string) (*Conn, error) {
	if path == "" {
		return Dial()
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("ioam6nl: open netns %s: %w", path, err)
	}
	defer ns.Close()
	return DialNetNS(ns)
}

// Close releases the socket. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.s.close() })
	return c.closeErr
}

// HasEvents reports whether the kernel offers the ioam6_events group.
func (c *Conn) HasEvents() bool { return c.s.fam.eventGroup != 0 }

func (c *Conn) do(ctx context.Context, op string, cmd uint8, dump bool, attrs []byte, fn func([]byte) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.s.request(ctx, cmd, dump, attrs, fn); err != nil {
		return fmt.Errorf("ioam6nl: %s: %w", op, err)
	}
	return nil
}

// AddNamespace creates an IOAM namespace (ip ioam namespace add ID [data
// DATA] [wide WIDE]).
func (c *Conn) AddNamespace(ctx context.Context, ns Namespace) error {
	return c.do(ctx, fmt.Sprintf("add namespace %d", ns.ID), cmdAddNamespace, false, encodeNamespace(ns), nil)
}

// DeleteNamespace removes an IOAM namespace (detaching its schema).
func (c *Conn) DeleteNamespace(ctx context.Context, id uint16) error {
	return c.do(ctx, fmt.Sprintf("delete namespace %d", id), cmdDelNamespace, false, nlmsg.AppendU16(nil, attrNsID, id), nil)
}

// Namespaces lists the IOAM namespaces (ip ioam namespace show).
func (c *Conn) Namespaces(ctx context.Context) ([]Namespace, error) {
	var out []Namespace
	err := c.do(ctx, "dump namespaces", cmdDumpNamespaces, true, nil, func(b []byte) error {
		ns, err := decodeNamespace(b)
		if err != nil {
			return err
		}
		out = append(out, ns)
		return nil
	})
	return out, err
}

// AddSchema creates an opaque-state schema (ip ioam schema add ID DATA).
// The id must fit 24 bits and the data MaxSchemaDataLen bytes.
func (c *Conn) AddSchema(ctx context.Context, sc Schema) error {
	if err := checkSchema(sc); err != nil {
		return err
	}
	b := nlmsg.AppendU32(nil, attrScID, sc.ID)
	b = nlmsg.AppendAttr(b, attrScData, sc.Data)
	return c.do(ctx, fmt.Sprintf("add schema %d", sc.ID), cmdAddSchema, false, b, nil)
}

// DeleteSchema removes a schema (detaching it from its namespace).
func (c *Conn) DeleteSchema(ctx context.Context, id uint32) error {
	return c.do(ctx, fmt.Sprintf("delete schema %d", id), cmdDelSchema, false, nlmsg.AppendU32(nil, attrScID, id), nil)
}

// Schemas lists the schemas (ip ioam schema show).
func (c *Conn) Schemas(ctx context.Context) ([]Schema, error) {
	var out []Schema
	err := c.do(ctx, "dump schemas", cmdDumpSchemas, true, nil, func(b []byte) error {
		sc, err := decodeSchema(b)
		if err != nil {
			return err
		}
		out = append(out, sc)
		return nil
	})
	return out, err
}

// SetNamespaceSchema attaches schema schemaID to namespace nsID (ip ioam
// namespace set NS schema ID).
func (c *Conn) SetNamespaceSchema(ctx context.Context, nsID uint16, schemaID uint32) error {
	b := nlmsg.AppendU16(nil, attrNsID, nsID)
	b = nlmsg.AppendU32(b, attrScID, schemaID)
	return c.do(ctx, fmt.Sprintf("attach schema %d to namespace %d", schemaID, nsID), cmdNsSetSchema, false, b, nil)
}

// ClearNamespaceSchema detaches any schema from namespace nsID (ip ioam
// namespace set NS schema none).
func (c *Conn) ClearNamespaceSchema(ctx context.Context, nsID uint16) error {
	b := nlmsg.AppendU16(nil, attrNsID, nsID)
	b = nlmsg.AppendAttr(b, attrScNone, nil)
	return c.do(ctx, fmt.Sprintf("detach schema from namespace %d", nsID), cmdNsSetSchema, false, b, nil)
}
