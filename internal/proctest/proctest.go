// Package proctest holds what the tests use to check that the processes a
// run started are gone: whether a process still runs, and a wait that
// gives killed processes a moment to disappear.
package proctest

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Grace is how long Outliving waits: a process killed with SIGKILL runs no
// more code, but the kernel may take a moment to tear it down, and its
// parent (sweep, or init for an orphaned child) to reap it.
const Grace = 5 * time.Second

// Alive reports whether pid is a running (not zombie, not dead) process,
// from the state field of /proc/<pid>/stat.
func Alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// Outliving returns those of pids, and of the processes more lists (when
// not nil), that are still alive after Grace; it returns as soon as none
// is.
func Outliving(pids []int, more func() []int) []int {
	deadline := time.Now().Add(Grace)
	for {
		var left []int
		for _, p := range pids {
			if Alive(p) {
				left = append(left, p)
			}
		}
		if more != nil {
			left = append(left, more()...)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}
