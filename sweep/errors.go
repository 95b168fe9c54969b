// Package sweep reads study files, expands them into points, and runs the
// points on an engine in parallel, streaming the results into a dataset that
// a later run resumes.
package sweep

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// InputError is bad input: a study file, a flag or a referenced file. It
// names where the problem is (file:line and key, or the flag). The CLI maps
// it to exit status 2.
type InputError struct {
	File string // study file, or "" for a flag
	Line int    // 1-based line, 0 if unknown
	Key  string // dotted key ("axes.top_k") or flag ("--jobs")
	Msg  string
}

func (e *InputError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Interrupted reports a run stopped by a signal after writing what finished.
type Interrupted struct {
	Done, Total int64
	Resume      string // the command that resumes
}

func (e *Interrupted) Error() string {
	if e.Total == 0 {
		return "interrupted before any point ran; resume with: " + e.Resume
	}
	return fmt.Sprintf("interrupted after %d of %d points; results so far are saved; resume with: %s", e.Done, e.Total, e.Resume)
}

// StoredStudyPath is the path the study text stored in the metadata of the
// dataset in dir is parsed under, so that its relative paths start in dir.
// It names no file: StoredStudyError keeps it out of messages.
func StoredStudyPath(dir string) string { return filepath.Join(dir, "study.toml") }

// StoredStudyError is err, an error of the study stored in a dataset's
// metadata and parsed under path (StoredStudyPath), naming the stored text
// and its line instead of that path: "line 5 of the study text stored in
// the dataset's metadata: base.model_config: ...". It unwraps to the
// *InputError without the path. Other errors are returned as they are.
func StoredStudyError(err error, path string) error {
	var ie *InputError
	if !errors.As(err, &ie) || ie.File != path {
		return err
	}
	c := *ie
	c.File = ""
	return &storedStudyError{&c}
}

type storedStudyError struct{ e *InputError }

func (e *storedStudyError) Error() string {
	s := "the study text stored in the dataset's metadata: " + e.e.Error()
	if e.e.Line > 0 {
		s = fmt.Sprintf("line %d of %s", e.e.Line, s)
	}
	return s
}

func (e *storedStudyError) Unwrap() error { return e.e }
