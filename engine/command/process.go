package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// result is what a finished program left behind.
type result struct {
	inv    *Invocation
	stdout string // path of the captured stdout
	exit   int    // exit status (accepted by the study)
}

// run writes the point's files, executes the program in its own process
// group with stdout and stderr captured in the work folder, and waits for it
// within the timeout. It returns an error for a failed start, a timeout, a
// signal or a non-accepted exit status. Whatever happens, no process of the
// group outlives run.
func (e *Engine) run(ctx context.Context, inv *Invocation) (*result, error) {
	for _, f := range inv.Files {
		path := filepath.Join(inv.Work, f.Path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", f.Path, err)
		}
		if err := os.WriteFile(path, []byte(f.Text), 0o644); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", f.Path, err)
		}
	}
	if err := e.rd.prepare(inv); err != nil {
		return nil, err
	}
	res := &result{inv: inv, stdout: filepath.Join(inv.Work, stdoutFile)}
	stdout, err := os.Create(res.stdout)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(inv.Work, stderrFile))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	cmd := &exec.Cmd{
		Path:   inv.Path,
		Args:   inv.Args,
		Env:    inv.Env,
		Dir:    inv.Dir,
		Stdout: stdout, // files, not pipes: the program writes them directly
		Stderr: stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,            // its own group: one kill reaches its children
			Pdeathsig: syscall.SIGKILL, // dies with sweep even if sweep is killed
		},
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("cannot start %s: %w", inv.Path, errors.Unwrap(err))
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- waitExited(pid) }()
	var timeout <-chan time.Time
	if e.c.timeout > 0 {
		t := time.NewTimer(e.c.timeout)
		defer t.Stop()
		timeout = t.C
	}
	timedOut := false
	select {
	case <-exited:
	case <-timeout:
		timedOut = true
		killGroup(pid)
		<-exited
	case <-ctx.Done():
		killGroup(pid)
		<-exited
	}
	// The leader has exited but is not reaped yet, so its process group ID
	// cannot be reused: kill whatever it left running, then reap it.
	killGroup(pid)
	werr := cmd.Wait()
	if timedOut {
		return res, fmt.Errorf("timed out after %v; its process group was killed", e.c.timeout)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	st := cmd.ProcessState
	if st == nil {
		return res, fmt.Errorf("waiting for %s: %v", inv.Path, werr)
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return res, fmt.Errorf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	res.exit = st.ExitCode()
	if !slices.Contains(e.c.exitCodes, res.exit) {
		return res, fmt.Errorf("exit status %d (accepted: %v)", res.exit, e.c.exitCodes)
	}
	return res, nil
}

// waitExited blocks until process pid has exited, without reaping it.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// killGroup sends SIGKILL to every process of the group pgid.
func killGroup(pgid int) {
	// ESRCH: the group is already gone
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
