//go:build !linux

package clt

import (
	"context"
	"errors"
	"net"

	"go.opentelemetry.io/otel/trace"
)

// errNotSupported: IPV6_HOPOPTS with IOAM is implemented for Linux only.
var errNotSupported = errors.New("clt: IPV6_HOPOPTS is supported on Linux only")

func setHopOpts(int, []byte) error { return errNotSupported }

// WriteMsgUDP sends b without the option (counted as a kernel skip) on
// platforms other than Linux.
func (inj *Injector) WriteMsgUDP(ctx context.Context, conn *net.UDPConn, b []byte, addr *net.UDPAddr) (int, error) {
	if inj.tagged(trace.SpanContextFromContext(ctx)) {
		if err := inj.skip(ReasonKernel, errNotSupported); err != nil {
			return 0, err
		}
	}
	n, _, err := conn.WriteMsgUDP(b, nil, addr)
	return n, err
}

func socketCookie(int) (uint64, error) { return 0, errNotSupported }
