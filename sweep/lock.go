package sweep

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Lock is an exclusive hold on (a shard of) a dataset. It is an flock(2) on a
// lock file, so the kernel releases it when its process dies: a lock left by
// a killed run is recognised as stale and taken over.
type Lock struct {
	f    *os.File
	path string
}

// LockedError is returned when another live run holds the lock.
type LockedError struct {
	Path  string
	Owner string
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("dataset is in use by another sweep run (%s; lock %s); wait for it to finish or stop it", e.Owner, e.Path)
}

// AcquireLock takes the lock file name in dir. stale is non-empty when a
// previous owner died without releasing it.
func AcquireLock(dir, name string) (l *Lock, stale string, err error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, "", fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, "", &LockedError{Path: path, Owner: strings.TrimSpace(string(owner))}
		}
		return nil, "", fmt.Errorf("lock %s: %w", path, err)
	}
	prev, _ := os.ReadFile(path)
	if s := strings.TrimSpace(string(prev)); s != "" {
		stale = s
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("pid %d on %s since %s", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(info+"\n"), 0)
		f.Sync()
	}
	return &Lock{f: f, path: path}, stale, nil
}

// Release empties and unlocks the lock file.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close() // closing releases the flock
	l.f = nil
	return err
}

// lockName is the lock file of a shard.
func lockName(sh Shard) string {
	if sh.N <= 1 {
		return ".lock"
	}
	return ".lock-shard-" + strconv.Itoa(sh.I) + "-of-" + strconv.Itoa(sh.N)
}
