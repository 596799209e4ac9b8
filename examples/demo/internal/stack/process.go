package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
)

// ProcSpec describes a process to start.
type ProcSpec struct {
	// Name identifies the process in logs and the log file name (<Name>.log).
	Name string
	// Netns is the name of the network namespace (/run/netns/<name>) to run in;
	// empty means the caller's namespace.
	Netns string
	// Path and Args are the program and its arguments (without argv[0]).
	Path string
	Args []string
	// Env is added to the orchestrator's environment.
	Env []string
	// Stdout, if set, receives the standard output instead of the log file.
	Stdout io.Writer
}

// Proc is a started process.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	logf    *os.File
	done    chan struct{}
	err     error
	stopped bool
	mu      sync.Mutex
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the exit error; valid after Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Tail returns the last n lines of the process's log file.
func (p *Proc) Tail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM, waits up to grace, then sends SIGKILL and waits.
// Stopping an exited process is a no-op.
func (p *Proc) Stop(grace time.Duration) {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	// The whole group: a child that forked (go run, a shell) goes too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *Proc) wasStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// Supervisor starts processes and stops them all on Close.
// It is safe for concurrent use.
type Supervisor struct {
	logDir string
	log    *slog.Logger
	grace  time.Duration

	mu     sync.Mutex
	procs  []*Proc
	exited chan *Proc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewSupervisor writes process logs into logDir (created if needed).
func NewSupervisor(logDir string, log *slog.Logger) (*Supervisor, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{logDir: logDir, log: log, grace: 5 * time.Second, exited: make(chan *Proc, 64)}, nil
}

// Exited delivers every process that exits without having been stopped.
func (s *Supervisor) Exited() <-chan *Proc { return s.exited }

// Start starts spec. The process runs until it exits or Close/Stop.
func (s *Supervisor) Start(spec ProcSpec) (*Proc, error) {
	logPath := filepath.Join(s.logDir, spec.Name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", spec.Name, err)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = logf
	if spec.Stdout != nil {
		cmd.Stdout = spec.Stdout
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	start := cmd.Start
	if spec.Netns != "" {
		start = func() error { return InNetns(spec.Netns, cmd.Start) }
	}
	if err := start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, LogPath: logPath, cmd: cmd, logf: logf, done: make(chan struct{})}
	s.log.Debug("started", "name", spec.Name, "pid", cmd.Process.Pid, "netns", spec.Netns, "log", logPath)
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	s.wg.Go(func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
		if !p.wasStopped() {
			select {
			case s.exited <- p:
			default:
			}
		}
	})
	return p, nil
}

// Run starts spec, waits for it to exit (or ctx), and returns its error with
// the log tail on failure.
func (s *Supervisor) Run(ctx context.Context, spec ProcSpec) error {
	p, err := s.Start(spec)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.stopped = true // an exit is expected; do not report it on Exited
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.Stop(s.grace)
		return ctx.Err()
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", spec.Name, p.err, indent(p.Tail(20)))
	}
	return nil
}

// Close stops every process in reverse start order. Safe to call twice.
func (s *Supervisor) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		procs := append([]*Proc(nil), s.procs...)
		s.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop(s.grace)
			s.log.Debug("stopped", "name", procs[i].Name)
		}
		s.wg.Wait()
	})
	return nil
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// InNetns runs fn on an OS thread switched into the named network namespace.
// A process started from fn (os/exec) is created in that namespace.
func InNetns(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it when this goroutine ends.
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Output runs a short command (in netns when not empty) and returns its combined output.
func Output(ctx context.Context, ns string, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	run := cmd.Run
	if ns != "" {
		run = func() error { return InNetns(ns, cmd.Run) }
	}
	if err := run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
