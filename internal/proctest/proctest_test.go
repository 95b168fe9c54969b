package proctest

import (
	"os"
	"os/exec"
	"testing"
)

// A running process is alive; once killed it is not, within Grace, even
// before its parent reaps it (a zombie does not run).
func TestAliveAndOutliving(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("this test's own process is not alive")
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) {
		t.Fatalf("sleep %d is not alive", pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if left := Outliving([]int{pid}, nil); len(left) != 0 {
		t.Errorf("killed process %v outlives", left)
	}
	cmd.Wait()
	if Alive(pid) {
		t.Errorf("reaped process %d is alive", pid)
	}
	if left := Outliving(nil, func() []int { return nil }); len(left) != 0 {
		t.Errorf("nothing outlives, got %v", left)
	}
}
