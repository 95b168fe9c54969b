package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweep-dse/sweep/dataset"
)

// smallFS mounts a tmpfs of the given size for the test (root only).
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func runBin(t *testing.T, args ...string) (string, int) {
	cmd := exec.Command(sweepBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	return stderr.String(), cmd.ProcessState.ExitCode()
}

// noTemporaries checks that no half-written part is left behind and that
// every part reads back whole.
func noTemporaries(t *testing.T, dir string) int {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Fatalf("temporary %s left behind", e.Name())
		}
	}
	_, n := rowsOf(t, dir)
	return n
}

// TestDiskFull runs a sweep into a 512 KiB file system: a clear error, exit
// 1, every part that was written readable, no temporary left; after room is
// made a resume completes the study.
func TestDiskFull(t *testing.T) {
	fs := smallFS(t, "512k")
	out := filepath.Join(fs, "ds")
	errs, code := runBin(t, "run", "testdata/kill.toml", "--out", out, "--flush-rows", "2000", "--progress", "none")
	if code != 1 || !strings.Contains(errs, "no space left on device") || !strings.Contains(errs, "writing results to "+out) {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	n := noTemporaries(t, out)
	t.Logf("%d rows written before the disk filled", n)
	// make room: move the dataset to a bigger place and resume there
	big := filepath.Join(t.TempDir(), "ds")
	if err := exec.Command("cp", "-r", out, big).Run(); err != nil {
		t.Fatal(err)
	}
	if errs, code := runBin(t, "run", "testdata/kill.toml", "--out", big, "--progress", "none"); code != 0 {
		t.Fatalf("resume: %d %s", code, errs)
	}
	if out, errs, code := runCLI(t, "status", big, "--verify", "--study", "testdata/kill.toml"); code != 0 {
		t.Fatalf("status: %s %s", out, errs)
	}
}

// TestReadOnlyResults runs against a dataset on a read-only file system: a
// clear error naming the folder, nothing changed.
func TestReadOnlyResults(t *testing.T) {
	fs := smallFS(t, "8m")
	out := filepath.Join(fs, "ds")
	if errs, code := runBin(t, "run", "../../studies/seed-moe.toml", "--out", out, "--progress", "none"); code != 0 {
		t.Fatalf("first run: %s", errs)
	}
	before := snapshot(t, out)
	if err := exec.Command("mount", "-o", "remount,ro", fs).Run(); err != nil {
		t.Skipf("cannot remount read-only: %v", err)
	}
	errs, code := runBin(t, "run", "testdata/kill.toml", "--out", out, "--progress", "none")
	if code != 1 || !strings.Contains(errs, "read-only file system") || !strings.Contains(errs, out) {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	if snapshot(t, out) != before {
		t.Fatal("the dataset changed")
	}
	parts, _ := dataset.Parts(out)
	if len(parts) == 0 {
		t.Fatal("parts vanished")
	}
}
