package proctest

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is the process under test, started again after each kill. Its
// methods are safe for concurrent use; the zero value is ready.
type Process struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	killed bool
}

// Start starts cmd as the process under test (a new *exec.Cmd for each
// start) and a goroutine that reaps it.
func (p *Process) Start(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("proctest: start %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // ends with the process
	p.mu.Lock()
	p.cmd, p.exited, p.killed = cmd, exited, false
	p.mu.Unlock()
	return nil
}

// Exited is closed once the process last started has exited (nil before
// the first Start).
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Killed reports whether Kill was called on the process last started. A
// kill that has begun counts: the process may not be reaped yet.
func (p *Process) Killed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// Kill SIGKILLs the process, if one was started, and waits until it is
// gone. It may be called more than once.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return
	}
	p.killed = true
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Stop ends the process with SIGTERM. A process still running after wait
// is killed; that, or an unclean exit, is the error.
func (p *Process) Stop(wait time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return errors.New("proctest: Stop before Start")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(wait):
		p.Kill()
		return fmt.Errorf("proctest: %s ignored SIGTERM for %v", cmd.Path, wait)
	}
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("proctest: %s exited with %s after SIGTERM", cmd.Path, cmd.ProcessState)
	}
	return nil
}
