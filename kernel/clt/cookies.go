package clt

import (
	"net"
	"runtime"
	"sync"
	"weak"
)

// cookieCache remembers the socket cookie (SO_COOKIE) of live TCP
// connections, so a keep-alive connection's requests skip the getsockopt.
// Keyed by weak pointers: an entry never keeps its connection alive, and
// goes when the connection is collected (a descriptor number, reused after
// close, could not tell two sockets apart).
type cookieCache struct {
	mu sync.Mutex
	m  map[weak.Pointer[net.TCPConn]]uint64
}

func (c *cookieCache) get(tc *net.TCPConn) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[weak.Make(tc)]
	return v, ok
}

func (c *cookieCache) put(tc *net.TCPConn, cookie uint64) {
	wp := weak.Make(tc)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[weak.Pointer[net.TCPConn]]uint64{}
	}
	_, had := c.m[wp]
	c.m[wp] = cookie
	c.mu.Unlock()
	if !had {
		runtime.AddCleanup(tc, c.drop, wp)
	}
}

func (c *cookieCache) drop(wp weak.Pointer[net.TCPConn]) {
	c.mu.Lock()
	delete(c.m, wp)
	c.mu.Unlock()
}
