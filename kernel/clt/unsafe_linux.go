package clt

import "unsafe"

// unsafePointer points at a control-message header laid out in b; the
// kernel ABI (struct cmsghdr) requires writing it in place.
func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }
