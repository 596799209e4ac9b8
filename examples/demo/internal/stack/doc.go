// Package stack runs the demo's moving parts: it starts processes (optionally
// inside a network namespace), keeps their output in log files, notices when one
// dies, waits for their health endpoints, and stops them all (SIGTERM, then
// SIGKILL after a grace period) in reverse start order. It also renders the
// Jaeger v2 configuration that points Jaeger's `grpc` storage backend at
// clt-storage (docs/jaeger.md §3).
//
// Children get PR_SET_PDEATHSIG=SIGKILL and their own process group, so a
// Ctrl-C reaches only the orchestrator, which then tears down in order, and a
// killed orchestrator still takes its children with it.
package stack
