package stack

import "syscall"

// sysProcAttr puts the child in its own process group (Ctrl-C reaches only the
// orchestrator) and kills it if the orchestrator dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
