package proctest

import (
	"errors"
	"fmt"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// Process is the process under test, started again after each kill. Its
// methods are safe for concurrent use; the zero value is ready.
type Process struct {
	last atomic.Pointer[run] // the process last started
}

// run is one start of the process.
type run struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once it has exited and was reaped
	killed atomic.Bool   // Kill was called on it
}

// Start starts cmd as the process under test (a new *exec.Cmd for each
// start) and a goroutine that reaps it.
func (p *Process) Start(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("proctest: start %s: %w", cmd.Path, err)
	}
	r := &run{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.exited) }() // ends with the process
	p.last.Store(r)
	return nil
}

// Exited is closed once the process last started has exited (nil before
// the first Start).
func (p *Process) Exited() <-chan struct{} {
	if r := p.last.Load(); r != nil {
		return r.exited
	}
	return nil
}

// Killed reports whether Kill was called on the process last started. A
// kill that has begun counts: the process may not be reaped yet.
func (p *Process) Killed() bool {
	r := p.last.Load()
	return r != nil && r.killed.Load()
}

// Kill SIGKILLs the process, if one was started, and waits until it is
// gone. It may be called more than once.
func (p *Process) Kill() {
	if r := p.last.Load(); r != nil {
		r.kill()
	}
}

func (r *run) kill() {
	r.killed.Store(true)
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

// Stop ends the process with SIGTERM. A process still running after wait
// is killed; that, or an unclean exit, is the error.
func (p *Process) Stop(wait time.Duration) error {
	r := p.last.Load()
	if r == nil {
		return errors.New("proctest: Stop before Start")
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(wait):
		r.kill()
		return fmt.Errorf("proctest: %s ignored SIGTERM for %v", r.cmd.Path, wait)
	}
	if !r.cmd.ProcessState.Success() {
		return fmt.Errorf("proctest: %s exited with %s after SIGTERM", r.cmd.Path, r.cmd.ProcessState)
	}
	return nil
}
