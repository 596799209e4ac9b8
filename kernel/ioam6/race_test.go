//go:build race

package ioam6

// raceEnabled skips allocation assertions: the race detector's
// instrumentation changes escape analysis.
const raceEnabled = true
