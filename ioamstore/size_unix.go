//go:build unix

package ioamstore

import (
	"io/fs"
	"syscall"
)

// allocatedBytes is what du counts (blocks actually allocated): badger
// preallocates its value-log files sparsely, so their length says little.
func allocatedBytes(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
