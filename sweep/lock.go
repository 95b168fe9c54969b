package sweep

import (
	"errors"
	"fmt"
	"math/rand/v2"
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
	// another run's probe (otherRunHolding) holds it for an instant
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	for try := 0; errors.Is(err, syscall.EWOULDBLOCK) && try < 10; try++ {
		time.Sleep(10 * time.Millisecond)
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
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

// ShardingError is returned when the dataset is being written by a run of
// another sharding: shards of different N (or a run without --shard and a
// shard) overlap, so both would compute, and write, some points.
type ShardingError struct {
	Dir      string
	N, Other int // the shard counts of this run and of the running one (1: no --shard)
}

func shardingName(n int) string {
	if n <= 1 {
		return "without --shard"
	}
	return fmt.Sprintf("with --shard i/%d", n)
}

func (e *ShardingError) Error() string {
	return fmt.Sprintf("dataset %s is being written by a sweep run %s; a run %s would compute some of the same points again; wait for it to finish, or use its sharding",
		e.Dir, shardingName(e.Other), shardingName(e.N))
}

// shardingLockPrefix names the lock files of the shardings ("-<N>" follows).
const shardingLockPrefix = ".lock-sharding-"

// shardingLock is a shared hold on the lock file of one sharding.
type shardingLock struct{ f *os.File }

func (l *shardingLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // releases the flock
	l.f = nil
	return err
}

// acquireSharding holds the lock file of sharding n (the N of --shard i/N,
// 1 without --shard) shared, as every run of that sharding does, and
// refuses with a *ShardingError while a run of another sharding holds its
// own: each other sharding's file is probed with a non-blocking exclusive
// flock, released at once. Of two runs of different shardings starting
// together, at least one sees the other (each takes its own lock before it
// probes), so at most one of them writes.
func acquireSharding(dir string, n int) (*shardingLock, error) {
	n = max(1, n)
	path := filepath.Join(dir, shardingLockPrefix+strconv.Itoa(n))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// another sharding's probe holds the file exclusively for an instant
	for try := 0; ; try++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || try == 50 {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l := &shardingLock{f: f}
	ents, err := os.ReadDir(dir)
	if err != nil {
		l.Release()
		return nil, err
	}
	for _, e := range ents {
		other, err := strconv.Atoi(strings.TrimPrefix(e.Name(), shardingLockPrefix))
		if !strings.HasPrefix(e.Name(), shardingLockPrefix) || err != nil || other == n {
			continue
		}
		if held(filepath.Join(dir, e.Name())) {
			l.Release()
			return nil, &ShardingError{Dir: dir, N: n, Other: other}
		}
	}
	return l, nil
}

// held reports whether some run holds the lock file path: a non-blocking
// exclusive flock fails for a while. Another run probing the same file
// holds it for an instant only, so a failed probe is retried for about
// 200 ms (jittered, so that two probers do not keep meeting) before the
// file counts as held.
func held(path string) bool {
	g, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false // removed meanwhile
	}
	defer g.Close() // closing releases the probe
	for try := 0; try < 20; try++ {
		err := syscall.Flock(int(g.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return false
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return false
		}
		time.Sleep(time.Duration(5+rand.IntN(10)) * time.Millisecond)
	}
	return true
}

// OtherShardingBusy reports a sharding other than n (the N of --shard i/N,
// 1 without --shard) whose runs are writing the dataset in dir now, and
// its N; sweep slurm checks it before it submits an array that could only
// be refused.
func OtherShardingBusy(dir string, n int) (other int, busy bool) {
	n = max(1, n)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		m, err := strconv.Atoi(strings.TrimPrefix(e.Name(), shardingLockPrefix))
		if !strings.HasPrefix(e.Name(), shardingLockPrefix) || err != nil || m == n {
			continue
		}
		if held(filepath.Join(dir, e.Name())) {
			return m, true
		}
	}
	return 0, false
}
