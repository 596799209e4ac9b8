package clt

import "net/netip"

// SetHopOptsFunc replaces the setsockopt call (fake setter for tests).
func (inj *Injector) SetHopOptsFunc(f func(fd int, hbh []byte) error) { inj.setHopOpts = f }

// SetEgressLookupFunc replaces the egress interface lookup (fake for tests).
func (inj *Injector) SetEgressLookupFunc(f func(fd int, dst netip.Addr) (id uint16, wide uint32, err error)) {
	inj.lookupEgress = func(fd int, dst netip.Addr) (egress, error) {
		id, wide, err := f(fd, dst)
		return egress{id: id, wide: wide}, err
	}
}

// CachedCookies is the number of socket cookies cached.
func (inj *Injector) CachedCookies() int {
	inj.cookies.mu.Lock()
	defer inj.cookies.mu.Unlock()
	return len(inj.cookies.m)
}
