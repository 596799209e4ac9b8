//go:build linux

package netnstest

// NewWithID builds with a chosen ID so tests can look for leftovers.
var NewWithID = newWithID
