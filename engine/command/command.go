// Package command is an engine that runs an external simulator program once
// per point — the real NeuPIMs binary, a script, any cycle-level simulator —
// and reads its metrics from what the program writes.
//
// A study declares the program in its [command] table: binary (a path, or a
// list [program, fixed arguments...]), workdir, args (each argument a Go
// text/template over the point's parameters), files rendered into the
// point's work folder, env, a timeout per point, the accepted exit statuses,
// and a reader: "json" (the last JSON object printed on stdout), "regex"
// (named groups over stdout, the last match of each) or "neupims" (NeuPIMs'
// _summary.tsv, or its per-stage SA_stage_*.tsv / PIM_stage_*.tsv files).
// Parameters are declared in [params] or inferred from the values the study
// gives in [base], [axes] and [[zip]]; the json and regex readers' metrics
// are declared in [metrics], so the dataset stays typed. preset = "neupims"
// fills in NeuPIMs' command line, its model-config JSON (with the MoE fork's
// fields) and its reader.
//
// Templates see every parameter by name and three more names: work (the
// point's work folder, absolute), study_dir and root (the preset's root,
// else study_dir); functions: json, path (relative to the study folder),
// add, sub, mul, div. A template naming anything else fails when the study
// loads.
//
// No shell is involved: the program is executed with an argument vector, and
// every rendered argument is exactly one argument, whatever characters a
// parameter value holds. Each point runs in a work folder of its own (see
// SetWorkDir) and in its own process group; a timeout or a cancelled context
// (Ctrl-C) kills the whole group, and so does the program's exit: nothing it
// started outlives it. If sweep itself is killed with SIGKILL, the programs
// get SIGKILL too (parent-death signal); what they started themselves is
// beyond reach then. A failure — a non-accepted exit status, a signal, a
// timeout, unreadable output — is returned as an error carrying the last
// lines of stderr and the kept work folder; the runner records it as a
// failed row and goes on.
//
// Row status of a point, and the error text of a failed one (followed by
// the last lines of stderr and "work folder: <kept folder>"):
//
//	ok      the exit status is accepted (exit_codes, default [0]; the neupims
//	        preset [0, 255]) and the reader found every metric
//	failed  "exit status N (accepted: [...])"
//	        "killed by signal N (name)": a crash
//	        "timed out after D; its process group was killed"
//	        "output: ...": the reader found no JSON object, no match, a value
//	        of the wrong type, or incomplete NeuPIMs output (no _summary.tsv
//	        and stage files short of A,B,E / A-F)
//	        "cannot start ...", or a template that fails to render
//
// An interrupted point (Ctrl-C) is no row at all: it runs on resume.
//
// The program writes stdout and stderr into unnamed temporary files (pipes
// where the temporary folder cannot hold those); the readers and failure
// reports use their last 16 MiB and 1 MiB, which a kept work folder gets as
// stdout.txt and stderr.txt, next to command.txt, the argument vector to
// rerun the point by hand. With --keep-work (keep) the program writes whole
// stdout.txt and stderr.txt files in its work folder instead.
//
// The model version is a hash of the program file's content, the fixed
// arguments, every template, the reader's configuration and the files
// listed in version_files (the preset adds its fixed config files), so
// rebuilding the simulator or editing a template never mixes old and new
// results.
package command

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/sweep-dse/sweep/engine"
)

// Name is the engine's name in study files and datasets.
const Name = "command"

// Engine runs an external program per point. It is safe for concurrent use.
type Engine struct {
	c       *config
	rd      reader
	fields  []engine.Field
	version string
	env     []string // inherited environment, if any
	devNull *os.File // the programs' stdin

	mu       sync.Mutex
	workRoot string  // folder holding the points' work folders
	keep     bool    // keep work folders of successful points
	free     []*slot // emptied work folders, for the next points
	slots    int     // work folders made so far
	host     string  // this machine's name, in work folder names
	token    string  // random, in work folder names
}

// New builds an engine from a study's tables. Problems with a key of the
// study are *KeyError.
func New(src Source) (*Engine, error) {
	c, err := parseConfig(src)
	if err != nil {
		return nil, err
	}
	e := &Engine{c: c, host: "host", token: strconv.FormatUint(rand.Uint64()>>16, 36)}
	if h, err := os.Hostname(); err == nil {
		e.host = strings.Map(func(r rune) rune {
			if r == '/' || r == filepath.Separator {
				return '_'
			}
			return r
		}, h)
	}
	switch c.readerName {
	case "json":
		e.rd = &jsonReader{metrics: c.metrics}
	case "regex":
		e.rd = &regexReader{metrics: c.metrics, res: c.regex}
	case "neupims":
		e.rd = &neupimsReader{}
	}
	e.fields = e.rd.fields()
	if c.inheritEnv {
		e.env = os.Environ()
	}
	if e.devNull, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if src.ReadOnly {
		return e, nil
	}
	v, err := e.computeVersion()
	if err != nil {
		return nil, err
	}
	e.version = v
	return e, nil
}

// Name implements engine.Engine.
func (e *Engine) Name() string { return Name }

// Version implements engine.Engine: 16 hex digits of a SHA-256 over the
// program's content and the study's command configuration.
func (e *Engine) Version() string { return e.version }

// Params implements engine.Engine: the preset's parameters, then the
// study's, in file order.
func (e *Engine) Params() []engine.Param { return e.c.params }

// Metrics implements engine.Engine: the reader's metrics.
func (e *Engine) Metrics() []engine.Field { return e.fields }

// Program is the absolute path of the program the engine runs.
func (e *Engine) Program() string { return e.c.binary }

// SetWorkDir sets the folder under which every point gets its own work
// folder, and whether work folders of successful points are kept. The
// runner calls it before the first Evaluate with <dataset>/_work, and calls
// the function it returns after the last: that removes dir if nothing is
// left in it. Without SetWorkDir, work folders go under a temporary folder.
//
// A point runs in a work folder of its own, with new unnamed files for the
// program's output. A folder whose point succeeded is emptied and given to
// a later point (emptied again then: creating and removing a folder per
// point costs more than the spawn on some file systems); a failed point's
// folder (and, with keep, every point's) is renamed to <dir>/<WorkKey> and
// kept, until the point succeeds.
func (e *Engine) SetWorkDir(dir string, keep bool) (release func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	e.workRoot, e.keep, e.free = dir, keep, nil
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.free {
			s.close()
			os.RemoveAll(s.dir)
		}
		e.free = nil
		os.Remove(dir) // only if empty: kept folders stay
	}
}

// slot is a work folder and the unnamed files that take the output of the
// programs run in it.
type slot struct {
	dir      string
	d        *os.File // dir, open; nil until first emptied
	out, err *os.File // nil until first used
}

// outputs returns new unnamed files for the program's output, read from
// the start. Each point gets its own: a process an earlier point left
// running (detached), or a program that reopens /dev/stdout and truncates
// it, writes to a file of its own and never into this point's output.
func (s *slot) outputs() (out, errOut *os.File, outStart, errStart int64, _ error) {
	if s.out != nil {
		s.out.Close()
		s.err.Close()
		s.out, s.err = nil, nil
	}
	o, err := unnamedFile()
	if err != nil {
		return nil, nil, 0, 0, err
	}
	e, err := unnamedFile()
	if err != nil {
		o.Close()
		return nil, nil, 0, 0, err
	}
	s.out, s.err = o, e
	return o, e, 0, 0, nil
}

// close closes the slot's files.
func (s *slot) close() {
	if s.out != nil {
		s.out.Close()
		s.err.Close()
		s.out, s.err = nil, nil
	}
	if s.d != nil {
		s.d.Close()
		s.d = nil
	}
}

// empty removes everything inside the slot's folder.
func (s *slot) empty() error {
	if s.d == nil {
		d, err := os.Open(s.dir)
		if err != nil {
			return err
		}
		s.d = d
	} else if _, err := s.d.Seek(0, io.SeekStart); err != nil {
		return err
	}
	names, err := s.d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(s.dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// takeSlot returns an empty work folder for a point: one a finished point
// emptied (putSlot), else a new one. A new folder's name is unique across
// processes and hosts (host, process, a random token of this engine, a
// sequence number): shards on several nodes share the dataset's _work
// folder, and process numbers repeat across nodes and containers.
func (e *Engine) takeSlot() (s *slot, root string, keep bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.workRoot == "" {
		d, err := os.MkdirTemp("", "sweep-command-")
		if err != nil {
			return nil, "", false, err
		}
		e.workRoot = d
	}
	root, keep = e.workRoot, e.keep
	if n := len(e.free); n > 0 {
		s = e.free[n-1]
		e.free = e.free[:n-1]
		// empty again: a process an earlier point left running may have
		// written into it since
		if err := s.empty(); err == nil {
			return s, root, keep, nil
		}
		s.close()
		os.RemoveAll(s.dir)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, "", false, err
	}
	for {
		e.slots++
		s = &slot{dir: filepath.Join(root, fmt.Sprintf(".run-%s-%d-%s-%d", e.host, os.Getpid(), e.token, e.slots))}
		err := os.Mkdir(s.dir, 0o755)
		if err == nil {
			return s, root, keep, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, "", false, err
		}
	}
}

// putSlot empties a work folder and keeps it for a later point (its
// output files go: every point gets new ones, see outputs).
func (e *Engine) putSlot(s *slot) {
	if s.out != nil {
		s.out.Close()
		s.err.Close()
		s.out, s.err = nil, nil
	}
	if err := s.empty(); err != nil {
		s.close()
		os.RemoveAll(s.dir)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if filepath.Dir(s.dir) == e.workRoot {
		e.free = append(e.free, s)
	} else {
		s.close()
		os.Remove(s.dir) // SetWorkDir moved the root meanwhile
	}
}

// Resolve implements engine.Engine: unset parameters take their declared
// defaults; a parameter with neither value nor default is an error.
func (e *Engine) Resolve(dir string, p []engine.Value) error {
	for i, prm := range e.c.params {
		if p[i].IsSet() {
			if p[i].Kind != prm.Kind {
				return &engine.ParamError{Name: prm.Name, Value: p[i].String(), Msg: fmt.Sprintf("want %s, got %s", prm.Kind, p[i].Kind)}
			}
			continue
		}
		if !prm.Default.IsSet() {
			return &engine.ParamError{Name: prm.Name, Msg: "not set: give it a value in [base] or [axes], or a default in [params]"}
		}
		p[i] = prm.Default
	}
	return nil
}

// Invocation is a point's rendered command: what Evaluate executes.
type Invocation struct {
	Path  string     // program, absolute
	Args  []string   // argument vector, Args[0] = Path
	Env   []string   // environment (KEY=value)
	Dir   string     // working directory of the program
	Work  string     // the point's work folder
	Files []FileText // files written into Work before the program starts
}

// FileText is one rendered file.
type FileText struct {
	Path string // relative to the work folder
	Text string
}

// Render renders a resolved point's command for the work folder work,
// writing nothing.
func (e *Engine) Render(p []engine.Value, work string) (*Invocation, error) {
	c := e.c
	data := make(map[string]any, len(p)+3)
	for i, prm := range c.params {
		data[prm.Name] = goValue(p[i])
	}
	data[dataWork] = work
	data[dataStudyDir] = c.dir
	data[dataRoot] = c.root
	inv := &Invocation{Path: c.binary, Work: work, Dir: c.workdir}
	if inv.Dir == "" {
		inv.Dir = work
	}
	inv.Args = make([]string, 0, 1+len(c.head)+len(c.args))
	inv.Args = append(inv.Args, c.binary)
	inv.Args = append(inv.Args, c.head...)
	for _, t := range c.args {
		s, err := t.render(data)
		if err != nil {
			return nil, err
		}
		inv.Args = append(inv.Args, s)
	}
	if len(c.env) > 0 || len(e.env) > 0 {
		inv.Env = make([]string, 0, len(e.env)+len(c.env))
		inv.Env = append(inv.Env, e.env...)
		for _, v := range c.env {
			s, err := v.t.render(data)
			if err != nil {
				return nil, err
			}
			inv.Env = append(inv.Env, v.name+"="+s)
		}
	} else {
		inv.Env = []string{} // not nil: nil would inherit
	}
	for _, f := range c.files {
		s, err := f.t.render(data)
		if err != nil {
			return nil, err
		}
		inv.Files = append(inv.Files, FileText{Path: f.dest, Text: s})
	}
	return inv, nil
}

// WorkKey is the name of a point's work folder: 16 hex digits of a hash of
// its parameter values.
func (e *Engine) WorkKey(p []engine.Value) string {
	h := sha256.New()
	var b []byte
	for i, v := range p {
		b = append(b[:0], e.c.params[i].Name...)
		b = append(b, 0, byte(v.Kind))
		switch v.Kind {
		case engine.Int, engine.Bool:
			b = binary.BigEndian.AppendUint64(b, uint64(v.I))
		case engine.Float:
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v.F))
		case engine.String:
			b = binary.BigEndian.AppendUint32(b, uint32(len(v.S)))
			b = append(b, v.S...)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// WorkDirName is the folder, under the runner's dataset folder, that holds
// the points' work folders. Its leading underscore keeps dataset readers
// (pyarrow, polars) from scanning it.
const WorkDirName = "_work"

// Evaluate implements engine.Engine: it renders the point's files and
// arguments into a work folder of its own, runs the program, and reads its
// metrics. When ctx is cancelled it kills the program's process group and
// returns ctx's error.
func (e *Engine) Evaluate(ctx context.Context, p []engine.Value, out []engine.Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	slot, root, keep, err := e.takeSlot()
	if err != nil {
		return fmt.Errorf("work folder: %w", err)
	}
	inv, err := e.Render(p, slot.dir)
	if err != nil {
		e.putSlot(slot)
		return err
	}
	res, err := e.run(ctx, inv, keep, slot)
	if ctx.Err() != nil {
		e.putSlot(slot) // not a result: the point runs again on resume
		return ctx.Err()
	}
	if errors.Is(err, engine.ErrStopped) {
		e.putSlot(slot) // nor is a program stopped from outside
		return err
	}
	if err == nil {
		err = e.rd.read(res, out)
		if err != nil {
			err = fmt.Errorf("output: %w", err)
		}
	}
	if err == nil && !keep {
		e.putSlot(slot)
		// the folder a failed earlier attempt kept is no longer needed
		if err := os.RemoveAll(filepath.Join(root, e.WorkKey(p))); err != nil {
			return fmt.Errorf("work folder of an earlier attempt: %w", err)
		}
		return nil
	}
	// keep the folder under the point's name; its output files go: a
	// process that escaped the kill may still hold them
	slot.close()
	work := filepath.Join(root, e.WorkKey(p))
	merr := os.RemoveAll(work) // a failed earlier attempt's
	if merr == nil {
		merr = os.Rename(slot.dir, work)
	}
	if merr != nil {
		work = slot.dir
	}
	if err == nil {
		if inv, rerr := e.Render(p, work); rerr == nil {
			writeCommandFile(inv)
		}
		return nil
	}
	return e.failure(err, res, p, work)
}

// failure decorates a point's error with the last lines of stderr and the
// kept work folder, where command.txt records how to rerun the point.
func (e *Engine) failure(err error, res *result, p []engine.Value, work string) error {
	var b strings.Builder
	b.WriteString(err.Error())
	if res != nil {
		if t := lastLines(res.stderr, stderrTailLines, stderrTailBytes); t != "" {
			fmt.Fprintf(&b, "\nstderr (last lines):\n%s", t)
		}
	}
	inv, rerr := e.Render(p, work)
	if rerr == nil && writeCommandFile(inv) == nil && keepOutput(work, res) == nil {
		fmt.Fprintf(&b, "\nwork folder: %s", work)
	}
	// the error column is UTF-8: a program's other bytes become U+FFFD
	return errors.New(strings.ToValidUTF8(b.String(), "\uFFFD"))
}

// Files of a work folder.
const (
	stdoutFile  = "stdout.txt"
	stderrFile  = "stderr.txt"
	commandFile = "command.txt"
)

const (
	stderrTailLines = 10
	stderrTailBytes = 4096
)

// writeCommandFile records the invocation of a kept work folder: working
// directory and the argument vector, one argument per line, quoted as Go
// strings, with the work folder's kept path.
func writeCommandFile(inv *Invocation) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# working directory\n%q\n# arguments, one per line (no shell involved)\n", inv.Dir)
	for _, a := range inv.Args {
		fmt.Fprintf(&b, "%q\n", a)
	}
	return os.WriteFile(filepath.Join(inv.Work, commandFile), []byte(b.String()), 0o644)
}

// lastLines returns up to n last lines of the last max bytes of b.
func lastLines(b []byte, n int, max int) string {
	cut := len(b) > max
	if cut {
		b = b[len(b)-max:]
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if cut && len(lines) > 1 {
		lines = lines[1:] // first line is cut
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func goValue(v engine.Value) any {
	switch v.Kind {
	case engine.Int:
		return v.I
	case engine.Float:
		return v.F
	case engine.Bool:
		return v.I != 0
	case engine.String:
		return v.S
	}
	return nil
}

// computeVersion hashes what determines a point's result besides its
// parameters.
func (e *Engine) computeVersion() (string, error) {
	c := e.c
	h := sha256.New()
	field := func(parts ...string) {
		for _, s := range parts {
			fmt.Fprintf(h, "%d:%s;", len(s), s)
		}
	}
	hashFile := func(path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		field("file")
		_, err = io.Copy(h, f)
		return err
	}
	field("sweep-command-v1")
	if err := hashFile(c.binary); err != nil {
		return "", fmt.Errorf("hashing program: %w", err)
	}
	field("head")
	field(c.head...)
	field("args")
	for _, t := range c.args {
		field(t.src)
	}
	field("files")
	for _, f := range c.files {
		field(f.dest, f.t.src)
	}
	field("env")
	for _, v := range c.env {
		field(v.name, v.t.src)
	}
	field("reader", c.readerName)
	for _, re := range c.regex {
		field(re.String())
	}
	for _, m := range c.metrics {
		field(m.field.Name, m.field.Kind.String(), strings.Join(m.key, "."))
	}
	for _, p := range c.versionFiles {
		if err := hashFile(p); err != nil {
			return "", fmt.Errorf("hashing version file: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}
