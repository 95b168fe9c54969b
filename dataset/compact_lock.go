package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DatasetLockName is the file whose flock(2) guards a whole dataset against
// compaction: every run holds it shared for its whole duration, a compaction
// holds it exclusively. (Runs of different shards also hold their own
// per-shard locks; this one only keeps compaction and runs apart.)
const DatasetLockName = ".lock-dataset"

// lockPoll is how often a waiting lock is retried.
const lockPoll = 100 * time.Millisecond

// DatasetLock is a shared or exclusive hold on a dataset. The kernel
// releases it when the process dies, so a killed run or compaction never
// leaves the dataset locked.
type DatasetLock struct {
	f *os.File
}

// BusyError is returned when the dataset lock cannot be taken in time.
type BusyError struct {
	Dir  string
	What string // what holds it
}

// Error implements error.
func (e *BusyError) Error() string {
	return fmt.Sprintf("dataset %s is busy: %s; try again when it has finished", e.Dir, e.What)
}

// LockShared takes the dataset lock shared, as a run does. While a
// compaction holds it, it calls waiting once (if not nil) and retries until
// the compaction ends or ctx is done.
func LockShared(ctx context.Context, dir string, waiting func()) (*DatasetLock, error) {
	f, err := openLockFile(dir)
	if err != nil {
		return nil, err
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return &DatasetLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !told && waiting != nil {
			waiting()
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("stopped while waiting for a compaction of %s to finish: %w", dir, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// LockExclusive takes the dataset lock exclusively, as a compaction does:
// no run of any shard may hold it. It waits up to wait (0: not at all) and
// then returns a *BusyError.
func LockExclusive(ctx context.Context, dir string, wait time.Duration) (*DatasetLock, error) {
	f, err := openLockFile(dir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &DatasetLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, &BusyError{Dir: dir, What: "a sweep run (or another compaction) is using it" + runningShards(dir)}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}

// Release releases the lock.
func (l *DatasetLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing releases the flock
	l.f = nil
	return err
}

func openLockFile(dir string) (*os.File, error) {
	path := filepath.Join(dir, DatasetLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// runningShards lists the owners recorded in the dataset's per-run lock
// files (".lock", ".lock-shard-…"), for messages. A run killed without
// cleaning up leaves its record behind, so this is a hint, not a proof; the
// locks themselves are not probed (probing would race a starting run).
func runningShards(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var owners []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, ".lock") || n == DatasetLockName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, n))
		if s := strings.TrimSpace(string(b)); err == nil && s != "" {
			owners = append(owners, n+": "+s)
		}
	}
	if len(owners) == 0 {
		return ""
	}
	if len(owners) > 3 {
		owners = append(owners[:3], fmt.Sprintf("and %d more", len(owners)-3))
	}
	return " (per-run lock files: " + strings.Join(owners, "; ") + ")"
}
