package sweep

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/zeebo/xxh3"

	"github.com/sweep-dse/sweep/engine"
)

// ID is a point's identity: a 128-bit XXH3 hash of the engine name, its
// model version, its parameter names and kinds, every resolved parameter
// value, and the contents of every file its file parameters name. Editing a
// study to add values keeps the IDs of existing points; a new model version,
// or an edit of a file the study names, changes them.
type ID [16]byte

// String is the ID in hex, as stored in the point_id column.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Key is the ID's first 8 bytes, used in sets.
func (id ID) Key() uint64 { return binary.BigEndian.Uint64(id[:8]) }

// ParseKey returns the Key of the hex point ID s without allocating; ok is
// false when s is not a point ID.
func ParseKey(s string) (key uint64, ok bool) {
	if len(s) != 2*len(ID{}) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		if i < 16 {
			key = key<<4 | uint64(d)
		}
	}
	return key, true
}

// Hasher computes point IDs for one study, reusing its buffer. It is not
// safe for concurrent use; use one per goroutine.
type Hasher struct {
	seed  uint64 // hash of the engine name, version and parameter schema
	buf   []byte
	s     *Study
	files []int     // the file parameters a point of the study may set
	last  []fileSum // per entry of files: the last file hashed and its digest
	// ignoring reports the parameters a point ignores (nil: none); a file
	// the point ignores does not change its results, and is not read
	ignoring func(p []engine.Value, dst []engine.Ignored) []engine.Ignored
	ign      []engine.Ignored
}

// fileSum is the digest of a file, by the value that names it.
type fileSum struct {
	name string
	sum  [16]byte
}

// NewHasher returns a Hasher for the points of s.
func NewHasher(s *Study) *Hasher {
	eng := s.Engine
	schema := fmt.Appendf(nil, "sweep-point-v2\x00%s\x00%s\x00", eng.Name(), eng.Version())
	for _, p := range eng.Params() {
		schema = fmt.Appendf(schema, "%s:%d\x00", p.Name, p.Kind)
	}
	files := s.fileParams()
	h := &Hasher{seed: xxh3.Hash(schema), s: s, files: files, last: make([]fileSum, len(files))}
	if len(files) > 0 {
		h.ignoring = s.ignoring()
	}
	return h
}

// fileParams lists the file parameters that may name a file in a point of
// the study: those the study sets, and those whose default is not the empty
// string (an unset default is derived). Most studies have none, and their
// IDs read no file.
func (s *Study) fileParams() []int {
	var out []int
	for i, p := range s.Engine.Params() {
		if p.File && (s.keys[i] != "" || !p.Default.Identical(engine.StringV(""))) {
			out = append(out, i)
		}
	}
	return out
}

// ID hashes a resolved point: each value as its kind byte and 8 bytes (a
// string: its length and bytes), then the 16-byte XXH3-128 digest of the
// contents of each file that a file parameter names (a non-empty value) and
// the point does not ignore (engine.Ignorer), in parameter order; seeded by
// the schema. The error is an *engine.FileError
// for a file that cannot be read (Study.ErrorAt names its key).
func (h *Hasher) ID(p []engine.Value) (ID, error) {
	// one pass, writing by index into the reused buffer (no append, whose
	// growth checks cost more than this one per value)
	b := h.buf[:cap(h.buf)]
	j := 0
	for i := range p {
		v := &p[i]
		need := 9
		if v.Kind == engine.String {
			need = 5 + len(v.S)
		}
		if j+need > len(b) {
			nb := make([]byte, 2*(j+need)+9*len(p)+16*len(h.files))
			copy(nb, b[:j])
			b = nb
		}
		b[j] = byte(v.Kind)
		j++
		switch v.Kind {
		case engine.Int, engine.Bool:
			binary.LittleEndian.PutUint64(b[j:], uint64(v.I))
			j += 8
		case engine.Float:
			binary.LittleEndian.PutUint64(b[j:], math.Float64bits(v.F))
			j += 8
		case engine.String:
			binary.LittleEndian.PutUint32(b[j:], uint32(len(v.S)))
			j += 4 + copy(b[j+4:], v.S)
		}
	}
	if h.ignoring != nil {
		h.ign = h.ignoring(p, h.ign[:0])
	}
files:
	for k, i := range h.files {
		v := &p[i]
		if v.Kind != engine.String || v.S == "" {
			continue
		}
		for _, x := range h.ign {
			if x.Param == i {
				continue files
			}
		}
		if v.S != h.last[k].name {
			sum, err := h.s.fileDigest(v.S)
			if err != nil {
				h.buf = b
				return ID{}, err
			}
			h.last[k] = fileSum{name: v.S, sum: sum}
		}
		if j+16 > len(b) {
			nb := make([]byte, 2*(j+16))
			copy(nb, b[:j])
			b = nb
		}
		j += copy(b[j:], h.last[k].sum[:])
	}
	h.buf = b
	b = b[:j]
	sum := xxh3.Hash128Seed(b, h.seed).Bytes()
	return ID(sum), nil
}

// fileDigests caches the digests of the files a study's points name, by
// path, so that each is read once however many points name it.
type fileDigests struct {
	mu sync.Mutex
	m  map[string]fileDigest
}

type fileDigest struct {
	sum [16]byte
	err error
}

// fileDigest returns the XXH3-128 digest of the contents of the file named
// by name, a file parameter's value: a path relative to the study's folder
// unless absolute, resolved as the engine resolves it (Engine.Resolve).
func (s *Study) fileDigest(name string) ([16]byte, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(s.Dir, name)
	}
	d := &s.digests
	// held while reading: a file is read once even when every worker
	// reaches it at once
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.m[path]; ok {
		return e.sum, e.err
	}
	sum, err := digestFile(path)
	if d.m == nil {
		d.m = map[string]fileDigest{}
	}
	d.m[path] = fileDigest{sum: sum, err: err}
	return sum, err
}

// digestFile is the XXH3-128 digest of a file's contents, read as a stream.
func digestFile(path string) ([16]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [16]byte{}, &engine.FileError{Path: path, Msg: "cannot read", Err: err}
	}
	defer f.Close()
	h := xxh3.New()
	if _, err := io.Copy(h, f); err != nil {
		return [16]byte{}, &engine.FileError{Path: path, Msg: "cannot read", Err: err}
	}
	return h.Sum128().Bytes(), nil
}

// Combinations is the size of the study's grid before constraints.
func (s *Study) Combinations() int64 {
	n := int64(1)
	for i := range s.Dims {
		n *= int64(s.Dims[i].Len())
		if n > math.MaxInt64/1024 {
			return math.MaxInt64 / 1024
		}
	}
	return n
}

// Fill writes combination idx (0 ≤ idx < Combinations, last dimension
// fastest) into p: the base values, then each dimension's values.
func (s *Study) Fill(idx int64, p []engine.Value) {
	copy(p, s.Base)
	s.FillAxes(idx, p)
}

// Resolver returns the function that resolves the study's points: the
// engine's prepared resolution (engine.Preparer) when it has one for this
// study, Resolve otherwise. With a prepared resolution (axesOnly) a point
// needs only its axis values (FillAxes); otherwise it needs them all
// (Fill). It is safe for concurrent use.
func (s *Study) Resolver() (resolve func(p []engine.Value) error, axesOnly bool) {
	if pr, ok := s.Engine.(engine.Preparer); ok {
		var vary []int
		for _, d := range s.Dims {
			vary = append(vary, d.Params...)
		}
		if f, ok := pr.Prepare(s.Dir, s.Base, vary); ok {
			return f, true
		}
	}
	return func(p []engine.Value) error { return s.Engine.Resolve(s.Dir, p) }, false
}

// FillAxes writes the axis values of combination idx into p and leaves the
// other parameters as they are (see Fill).
func (s *Study) FillAxes(idx int64, p []engine.Value) {
	for d := len(s.Dims) - 1; d >= 0; d-- {
		dim := &s.Dims[d]
		n := int64(dim.Len())
		step := idx % n
		idx /= n
		for j, pi := range dim.Params {
			p[pi] = dim.Values[j][step]
		}
	}
}

// whereByIndex reports whether the constraints are decided by combination
// index alone (KeepIndex then reads no parameter).
func (s *Study) whereByIndex() bool {
	t := s.table()
	return len(s.Where) == 0 || (t != nil && t.err == nil)
}

// Filter evaluates the study's constraints on unresolved values.
type Filter struct {
	s   *Study
	env map[string]any
}

// NewFilter returns a constraint evaluator (one per goroutine).
func (s *Study) NewFilter() *Filter {
	return &Filter{s: s, env: map[string]any{}}
}

// keepTable is every constraint evaluated once for each combination of the
// dimensions they read: keep[Σ step_d·mul_d] over those dimensions.
type keepTable struct {
	dims   []int   // dimensions read by some constraint
	stride []int64 // combination-index stride of each
	mul    []int64 // table stride of each
	keep   []bool
	err    error // the first evaluation error, reported by KeepIndex
}

// maxKeepTable bounds the table (one byte per entry).
const maxKeepTable = 1 << 22

// table builds (once) the constraint table, or returns nil when the
// constraints read too many combinations to tabulate.
func (s *Study) table() *keepTable {
	s.tableOnce.Do(func() {
		read := map[int]bool{}
		for _, c := range s.Where {
			for _, pi := range c.params {
				read[pi] = true
			}
		}
		t := &keepTable{}
		size := int64(1)
		stride := int64(1)
		strides := make([]int64, len(s.Dims))
		for d := len(s.Dims) - 1; d >= 0; d-- {
			strides[d] = stride
			stride *= int64(s.Dims[d].Len())
		}
		for d := range s.Dims {
			uses := false
			for _, pi := range s.Dims[d].Params {
				uses = uses || read[pi]
			}
			if uses {
				t.dims = append(t.dims, d)
				t.stride = append(t.stride, strides[d])
				size *= int64(s.Dims[d].Len())
				if size > maxKeepTable {
					return
				}
			}
		}
		t.mul = make([]int64, len(t.dims))
		m := int64(1)
		for j := len(t.dims) - 1; j >= 0; j-- {
			t.mul[j] = m
			m *= int64(s.Dims[t.dims[j]].Len())
		}
		t.keep = make([]bool, size)
		f := s.NewFilter()
		p := make([]engine.Value, len(s.Engine.Params()))
		for k := int64(0); k < size; k++ {
			copy(p, s.Base)
			for j, d := range t.dims {
				step := (k / t.mul[j]) % int64(s.Dims[d].Len())
				for q, pi := range s.Dims[d].Params {
					p[pi] = s.Dims[d].Values[q][step]
				}
			}
			ok, err := f.Keep(p)
			if err != nil {
				t.err = err
				break
			}
			t.keep[k] = ok
		}
		s.keepTab = t
	})
	return s.keepTab
}

// KeepIndex reports whether combination idx (already filled into p) passes
// the constraints, by a lookup in a table built once per study when the
// dimensions the constraints read are few enough, else by evaluating them.
func (f *Filter) KeepIndex(idx int64, p []engine.Value) (bool, error) {
	t := f.s.table()
	if t == nil || t.err != nil {
		return f.Keep(p)
	}
	k := int64(0)
	for j, d := range t.dims {
		step := (idx / t.stride[j]) % int64(f.s.Dims[d].Len())
		k += step * t.mul[j]
	}
	return t.keep[k], nil
}

// Keep reports whether the point passes every where-constraint. Unset
// parameters take their fixed defaults.
func (f *Filter) Keep(p []engine.Value) (bool, error) {
	params := f.s.Engine.Params()
	for ci := range f.s.Where {
		c := &f.s.Where[ci]
		for j, pi := range c.params {
			v := p[pi]
			if !v.IsSet() {
				v = params[pi].Default
			}
			f.env[c.names[j]] = goValue(v)
		}
		out, err := expr.Run(c.prog, f.env)
		if err != nil {
			return false, &InputError{File: f.s.Path, Line: locate(f.s.Text, []string{"study", "where"}), Key: "study.where", Msg: fmt.Sprintf("%q: %v", c.Source, FirstLine(err.Error()))}
		}
		if ok, _ := out.(bool); !ok {
			return false, nil
		}
	}
	return true, nil
}

func goValue(v engine.Value) any {
	switch v.Kind {
	case engine.Int:
		return int(v.I)
	case engine.Float:
		return v.F
	case engine.Bool:
		return v.I != 0
	}
	return v.S
}

// Describe formats the study-varied values of a point: "num_experts=8 top_k=2".
func (s *Study) Describe(p []engine.Value) string {
	var b strings.Builder
	for _, d := range s.Dims {
		for j, pi := range d.Params {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(d.Names[j])
			b.WriteByte('=')
			b.WriteString(p[pi].String())
		}
	}
	return b.String()
}
