package sweep

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitArrays(t *testing.T) {
	for n := 1; n <= 40; n++ {
		for m := 1; m <= 12; m++ {
			arrays := SplitArrays(n, m)
			next := 0
			for _, a := range arrays {
				if a.Offset != next || a.Count < 1 || a.Count > m {
					t.Fatalf("n=%d m=%d: bad array %+v after shard %d (%v)", n, m, a, next, arrays)
				}
				// the highest index, Count-1, must stay below MaxArraySize
				if a.Count-1 >= m {
					t.Fatalf("n=%d m=%d: index %d not below MaxArraySize", n, m, a.Count-1)
				}
				next += a.Count
			}
			if next != n {
				t.Fatalf("n=%d m=%d: arrays cover %d shards", n, m, next)
			}
			if want := (n + m - 1) / m; len(arrays) != want {
				t.Fatalf("n=%d m=%d: %d arrays, want %d", n, m, len(arrays), want)
			}
		}
	}
	if a := SplitArrays(4, 3); len(a) != 2 || a[0] != (SlurmArray{0, 3}) || a[1] != (SlurmArray{3, 1}) {
		t.Fatalf("4 tasks, MaxArraySize 3: %v", a)
	}
	if a := SplitArrays(5, 0); len(a) != 1 || a[0].Count != 5 {
		t.Fatalf("default MaxArraySize: %v", a)
	}
}

func TestParseJobID(t *testing.T) {
	for in, want := range map[string]string{"123\n": "123", "4567;cluster\n": "4567", "sbatch: warning: x\n89\n": "89"} {
		if got, err := ParseJobID(in); err != nil || got != want {
			t.Errorf("ParseJobID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "\n", "Submitted batch job 12\n", "abc", ";x"} {
		if got, err := ParseJobID(in); err == nil {
			t.Errorf("ParseJobID(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseMaxArraySize(t *testing.T) {
	out := "Configuration data as of 2026-01-01T00:00:00\nAccountingStorageBackupHost = (null)\nMaxArraySize            = 3\nMaxJobCount             = 10000\n"
	if n, err := parseMaxArraySize([]byte(out)); err != nil || n != 3 {
		t.Fatalf("got %d, %v", n, err)
	}
	if _, err := parseMaxArraySize([]byte("MaxJobCount = 1\n")); err == nil {
		t.Fatal("no MaxArraySize: want an error")
	}
	if _, err := parseMaxArraySize([]byte("MaxArraySize = x\n")); err == nil {
		t.Fatal("bad MaxArraySize: want an error")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "/a/b.toml": "/a/b.toml", "a b": "'a b'", "it's": `'it'\''s'`, "": "''", "$x": "'$x'"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestWriteSlurmRejectsBadInput(t *testing.T) {
	s, err := Load("../studies/seed-moe.toml")
	if err != nil {
		t.Fatal(err)
	}
	base := func() SlurmOptions {
		return SlurmOptions{Study: "../studies/seed-moe.toml", Out: t.TempDir(), Tasks: 4, CPUs: 1, Exe: "/bin/true"}
	}
	for name, mod := range map[string]func(*SlurmOptions){
		"tasks":        func(o *SlurmOptions) { o.Tasks = 0 },
		"cpus":         func(o *SlurmOptions) { o.CPUs = 0 },
		"parallel":     func(o *SlurmOptions) { o.Parallel = -1 },
		"partition":    func(o *SlurmOptions) { o.Partition = "a b" },
		"extra":        func(o *SlurmOptions) { o.Extra = []string{"account=x"} },
		"blank in out": func(o *SlurmOptions) { o.Out = filepath.Join(t.TempDir(), "a b") },
		"pct in out":   func(o *SlurmOptions) { o.Out = filepath.Join(t.TempDir(), "a%j") },
		"run --shard":  func(o *SlurmOptions) { o.RunArgs = []string{"--shard", "1/2"} },
		"run -out=":    func(o *SlurmOptions) { o.RunArgs = []string{"-out=x"} },
	} {
		o := base()
		mod(&o)
		_, err := WriteSlurm(s, o)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: err = %v, want an InputError", name, err)
		}
	}
	// a value that merely looks like a run flag name is fine
	o := base()
	o.RunArgs = []string{"--flush-rows", "100"}
	j, err := WriteSlurm(s, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(j.Script)
	if !strings.Contains(string(b), "--progress lines --flush-rows 100\n") {
		t.Errorf("run flags missing from the script:\n%s", b)
	}
}

func TestWriteSlurmScripts(t *testing.T) {
	s, err := Load("../studies/seed-moe.toml")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	j, err := WriteSlurm(s, SlurmOptions{
		Study: "../studies/seed-moe.toml", Out: out, Tasks: 7, Parallel: 2, CPUs: 3,
		Partition: "gpu", Time: "1:00:00", Extra: []string{"--account=proj", "--qos=low"},
		MaxArraySize: 3, Exe: "/opt/sweep bin/sweep", ToolVersion: "9.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	if j.LogDir != filepath.Join(out, "slurm") || filepath.Dir(j.Script) != j.LogDir || filepath.Dir(j.FinishScript) != j.LogDir {
		t.Fatalf("scripts not under <out>/slurm: %+v", j)
	}
	study, _ := filepath.Abs("../studies/seed-moe.toml")
	body, _ := os.ReadFile(j.Script)
	script := string(body)
	for _, want := range []string{
		"#!/bin/bash\n",
		"#SBATCH --job-name=sweep-seed-moe\n",
		"#SBATCH --output=" + filepath.Join(out, "slurm") + "/%x-%A_%a.out\n",
		"#SBATCH --cpus-per-task=3\n",
		"#SBATCH --chdir=" + out + "\n",
		"#SBATCH --partition=gpu\n",
		"#SBATCH --time=1:00:00\n",
		"#SBATCH --account=proj\n#SBATCH --qos=low\n",
		"shard=$((task + offset))\n",
		"-ge 7 ]",
		"exec '/opt/sweep bin/sweep' run " + study + " --out " + out + ` --shard "$shard/7" --jobs "${SLURM_CPUS_PER_TASK:-1}" --progress lines` + "\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("array script lacks %q:\n%s", want, script)
		}
	}
	// every #SBATCH line comes before the first command
	lines := strings.Split(script, "\n")
	seenCmd := false
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "#SBATCH") && seenCmd {
			t.Errorf("#SBATCH line after a command: %q", l)
		}
		if l != "" && !strings.HasPrefix(l, "#") {
			seenCmd = true
		}
	}
	body, _ = os.ReadFile(j.FinishScript)
	finish := string(body)
	for _, want := range []string{
		"#SBATCH --job-name=sweep-seed-moe-finish\n",
		"'/opt/sweep bin/sweep' status " + out + " --study " + study + " --verify || status=$?\n",
		"'/opt/sweep bin/sweep' compact " + out + " --wait 10m",
		`exit "$status"`,
	} {
		if !strings.Contains(finish, want) {
			t.Errorf("finish script lacks %q:\n%s", want, finish)
		}
	}
	// 7 tasks, MaxArraySize 3: three arrays, chained for the --parallel limit
	if len(j.Arrays) != 3 {
		t.Fatalf("arrays %v", j.Arrays)
	}
	want := [][]string{
		{"--parsable", "--array=0-2%2", j.Script, "0"},
		{"--parsable", "--array=0-2%2", "--dependency=afterany:11", j.Script, "3"},
		{"--parsable", "--array=0-0%2", "--dependency=afterany:12", j.Script, "6"},
	}
	for i, a := range j.Arrays {
		after := ""
		if i > 0 {
			after = []string{"", "11", "12"}[i]
		}
		if got := j.ArrayArgs(a, after); strings.Join(got, " ") != strings.Join(want[i], " ") {
			t.Errorf("array %d: sbatch %v, want %v", i, got, want[i])
		}
	}
	if got := strings.Join(j.FinishArgs([]string{"11", "12", "13"}), " "); got != "--parsable --dependency=afterany:11:12:13 "+j.FinishScript {
		t.Errorf("finish: sbatch %s", got)
	}
	cmds := j.SubmitCommands()
	if len(cmds) != 4 || !strings.Contains(cmds[1], "--dependency=afterany:$a0") || !strings.HasSuffix(cmds[3], "--dependency=afterany:$a0:$a1:$a2 "+j.FinishScript) {
		t.Errorf("submit commands:\n%s", strings.Join(cmds, "\n"))
	}
	// without --parallel the arrays do not wait for each other
	j2, err := WriteSlurm(s, SlurmOptions{Study: "../studies/seed-moe.toml", Out: out, Tasks: 7, CPUs: 1, MaxArraySize: 3, Exe: "/x/sweep"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range j2.SubmitCommands()[:3] {
		if strings.Contains(c, "dependency") || strings.Contains(c, "%2") {
			t.Errorf("unchained array: %s", c)
		}
	}
}
