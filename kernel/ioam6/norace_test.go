//go:build !race

package ioam6

const raceEnabled = false
