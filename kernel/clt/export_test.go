package clt

// SetHopOptsFunc replaces the setsockopt call (fake setter for tests).
func (inj *Injector) SetHopOptsFunc(f func(fd int, hbh []byte) error) { inj.setHopOpts = f }
