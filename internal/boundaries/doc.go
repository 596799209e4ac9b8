// Package boundaries makes the layout rules of docs/contracts.md ("Module and
// layout") executable: its test lists every package of the module with
// `go list` and fails on an import the rules forbid. It has no code of its
// own; `make lint` runs the test.
package boundaries
