//go:build !unix

package ioamstore

import "io/fs"

func allocatedBytes(fi fs.FileInfo) int64 { return fi.Size() }
