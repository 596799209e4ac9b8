//go:build !linux

// Command demo is the one-command CLT demo; it needs Linux (network
// namespaces, IOAM sysctls and netlink).
package main

import (
	"fmt"
	"os"
)

func main() {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(roleMain(role, os.Args[1:]))
	}
	fmt.Fprintln(os.Stderr, "demo: needs Linux (network namespaces and IOAM)")
	os.Exit(1)
}
