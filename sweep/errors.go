// Package sweep reads study files, expands them into points, and runs the
// points on an engine in parallel, streaming the results into a dataset that
// a later run resumes.
package sweep

import (
	"fmt"
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
