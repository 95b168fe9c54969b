package command

import (
	"context"
	"errors"
	"fmt"
	"github.com/sweep-dse/sweep/engine"
	"io"
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
	stdout []byte // the last stdoutCap bytes of stdout
	stderr []byte // the last tailCap bytes of stderr
	// bytes of each stream not kept in memory (their start); 0 when the
	// streams went to files
	stdoutDropped, stderrDropped int64
	toFiles                      bool // stdout.txt and stderr.txt hold the streams
	exit                         int  // exit status (accepted by the study)
}

// tailCap bounds the stderr (and, for the neupims reader, stdout) kept in
// memory: its last bytes are what a failure report shows.
const tailCap = 1 << 20

// waitDelay is how long Wait waits for the output pipes to close after the
// process group is gone (a daemon that left the group may hold them).
const waitDelay = 2 * time.Second

// tail is an io.Writer keeping the last max bytes written to it.
type tail struct {
	max     int
	buf     []byte
	dropped int64
}

// Write keeps p, dropping the oldest bytes beyond twice max.
func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		cut := len(t.buf) - t.max
		t.dropped += int64(cut)
		t.buf = append(t.buf[:0], t.buf[cut:]...)
	}
	return len(p), nil
}

// bytes returns the last max bytes and how many bytes before them were
// dropped.
func (t *tail) bytes() ([]byte, int64) {
	if len(t.buf) > t.max {
		cut := len(t.buf) - t.max
		return t.buf[cut:], t.dropped + int64(cut)
	}
	return t.buf, t.dropped
}

// run writes the point's files, executes the program in its own process
// group and waits for it within the timeout. Its stdout and stderr go to
// stdout.txt and stderr.txt in the work folder when toFiles is set, else
// into memory (their last bytes). It returns an error for a failed start, a
// timeout, a signal or a non-accepted exit status. Whatever happens, no
// process of the group outlives run.
func (e *Engine) run(ctx context.Context, inv *Invocation, toFiles bool, sl *slot) (*result, error) {
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
	res := &result{inv: inv, toFiles: toFiles}
	cmd := &exec.Cmd{
		Path:  inv.Path,
		Args:  inv.Args,
		Env:   inv.Env,
		Dir:   inv.Dir,
		Stdin: e.devNull,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,            // its own group: one kill reaches its children
			Pdeathsig: syscall.SIGKILL, // dies with sweep even if sweep is killed
		},
		WaitDelay: waitDelay,
	}
	// The program writes its output into files itself: named ones in the
	// work folder when they are kept, else the slot's unnamed temporary ones
	// (cheaper than pipes, which need a copying goroutine each); pipes into
	// memory when the temporary folder cannot hold unnamed files.
	var outFile, errFile *os.File
	var outStart, errStart int64
	var outTail, errTail *tail
	if toFiles {
		var err error
		if outFile, err = os.Create(filepath.Join(inv.Work, stdoutFile)); err != nil {
			return nil, err
		}
		defer outFile.Close()
		if errFile, err = os.Create(filepath.Join(inv.Work, stderrFile)); err != nil {
			return nil, err
		}
		defer errFile.Close()
	} else if unnamedFiles {
		if o, e, oStart, eStart, err := sl.outputs(); err == nil {
			outFile, errFile, outStart, errStart = o, e, oStart, eStart
		}
	}
	if outFile != nil {
		cmd.Stdout, cmd.Stderr = outFile, errFile
	} else {
		outTail = &tail{max: e.rd.stdoutCap()}
		errTail = &tail{max: tailCap}
		cmd.Stdout, cmd.Stderr = outTail, errTail
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
	if outFile != nil {
		var err error
		if res.stdout, res.stdoutDropped, err = readTail(outFile, outStart, int64(e.rd.stdoutCap())); err != nil {
			return res, fmt.Errorf("reading stdout: %w", err)
		}
		if res.stderr, res.stderrDropped, err = readTail(errFile, errStart, tailCap); err != nil {
			return res, fmt.Errorf("reading stderr: %w", err)
		}
		if toFiles {
			res.stdoutDropped, res.stderrDropped = 0, 0
		}
	} else {
		res.stdout, res.stdoutDropped = outTail.bytes()
		res.stderr, res.stderrDropped = errTail.bytes()
	}
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
		switch ws.Signal() {
		case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP:
			// stopped from outside, as a job's cancellation (scancel, a
			// time limit) stops every process of the job, often before
			// sweep hears of it: no result, the point runs again
			return res, fmt.Errorf("stopped by signal %d (%v): %w", int(ws.Signal()), ws.Signal(), engine.ErrStopped)
		}
		return res, fmt.Errorf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	res.exit = st.ExitCode()
	if !slices.Contains(e.c.exitCodes, res.exit) {
		return res, fmt.Errorf("exit status %d (accepted: %v)", res.exit, e.c.exitCodes)
	}
	return res, nil
}

// keepOutput writes the kept tails of stdout and stderr into a kept work
// folder (when they went to memory).
func keepOutput(dir string, res *result) error {
	if res == nil || res.toFiles {
		return nil
	}
	for _, s := range []struct {
		name    string
		data    []byte
		dropped int64
	}{{stdoutFile, res.stdout, res.stdoutDropped}, {stderrFile, res.stderr, res.stderrDropped}} {
		f, err := os.Create(filepath.Join(dir, s.name))
		if err != nil {
			return err
		}
		if s.dropped > 0 {
			fmt.Fprintf(f, "[sweep: the first %d bytes are not kept; run with --keep-work for whole outputs]\n", s.dropped)
		}
		_, err = f.Write(s.data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
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

// readTail returns the last max bytes of an open file from offset start on,
// and how many bytes between start and them it leaves out.
func readTail(f *os.File, start, max int64) ([]byte, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	off := max64(start, st.Size()-max)
	buf := make([]byte, max64(0, st.Size()-off))
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, 0, err
	}
	return buf, off - start, nil
}

// unnamedFiles lets output go to unnamed files (tests turn it off to
// exercise the pipes).
var unnamedFiles = true

// unnamedFile opens a file without a name: an anonymous memory file
// (memfd_create, a few µs), else one in the temporary folder (O_TMPFILE,
// which costs tens of µs on some file systems). Either vanishes when its
// last holder closes it.
func unnamedFile() (*os.File, error) {
	if fd, err := unix.MemfdCreate("sweep-output", unix.MFD_CLOEXEC); err == nil {
		return os.NewFile(uintptr(fd), "sweep-output"), nil
	}
	return os.OpenFile(os.TempDir(), unix.O_TMPFILE|os.O_RDWR, 0o600)
}
