//go:build !linux

package ioamstore

// pageOutTables is Linux only (madvise MADV_PAGEOUT); elsewhere mapped
// tables are left to the kernel.
func pageOutTables(string) (int, error) { return 0, nil }

func fileRSS() int64 { return 0 }
