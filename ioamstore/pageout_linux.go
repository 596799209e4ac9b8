//go:build linux

package ioamstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pageOutTables asks the kernel to reclaim this process's pages of the
// store's table (.sst) and value-log (.vlog) mappings (madvise(2)
// MADV_PAGEOUT, Linux 5.4). Badger writes every table through a shared
// file mapping and keeps it mapped, so without this the process's RSS
// grows with the data stored: every table written since start stays
// resident as clean page cache counted in RSS. MADV_PAGEOUT never changes
// contents (dirty pages are written back first; a range reused meanwhile
// by anonymous memory is only a hint, without swap a no-op), so racing a
// compaction that unmaps a table is harmless. It returns the ranges
// advised.
func pageOutTables(dir string) (int, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return 0, fmt.Errorf("page out: %w", err)
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	root += string(filepath.Separator)
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("page out: %w", err)
	}
	n := 0
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		path := strings.Join(f[5:], " ")
		if !strings.HasPrefix(path, root) || (!strings.HasSuffix(path, ".sst") && !strings.HasSuffix(path, ".vlog")) {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
		switch {
		case e == 0:
			n++
		case e == unix.ENOMEM: // unmapped meanwhile (a compaction removed the table)
		default:
			errs = append(errs, fmt.Errorf("madvise %s: %w", path, e))
		}
	}
	return n, errors.Join(errs...)
}

// fileRSS is the process's resident file-backed memory (RssFile), in bytes.
func fileRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
