package sweep

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sweep-dse/sweep/engine"
)

// A parameter the study sets but no point uses is a mistake a sweep would
// hide: N identical rows look like a sweep of it. Expand asks the engine
// (engine.Ignorer) which given parameters each resolved point ignores and
// counts them per study key: one that no point uses is an *InputError at
// its key; an axis some points ignore is a note (Plan.Notes), since the
// points that differ only in it there repeat each other's results.

// NoEffect is a study key whose parameter has no effect on some points.
type NoEffect struct {
	Key    string // "axes.routing_skew", "base.seq_len", "study.repeats"
	Line   int
	Param  string // the parameter's name
	Points int64  // points that ignore it
	Of     int64  // points of the study
	Varied bool   // an axis, a [[zip]] member or study.repeats
	Msg    string // why, with the values that make it so
}

// All reports whether no point of the study uses the parameter.
func (x *NoEffect) All() bool { return x.Points == x.Of }

// Note is the note a study with x prints.
func (x *NoEffect) Note(path string) string {
	return fmt.Sprintf("note: %s:%d: %s has no effect on %d of %d points (%s): points that differ only in %s repeat each other's results there",
		path, x.Line, x.Key, x.Points, x.Of, x.Msg, x.Param)
}

// ignoredCount accumulates, for one parameter, the points that ignore it.
// It names the reasons seen first (at the lowest combination indexes), and
// of each the deciding values seen first, so that a message is the same
// whatever the number of workers and the order they finish in.
type ignoredCount struct {
	n       int64
	reasons []ignoredReason // at most maxReasons
	more    bool            // more reasons than those
}

// ignoredReason is one rule by which points ignore a parameter, with the
// values of the parameter that decides it.
type ignoredReason struct {
	why   string
	by    int
	first int64       // lowest combination index
	vals  []seenValue // at most maxValues
	more  bool        // more values than those
}

type seenValue struct {
	v     engine.Value
	first int64
}

// How many reasons and deciding values a message names.
const maxReasons, maxValues = 3, 4

// add counts the point idx of p, which ignores the parameter for x's
// reason. A worker's indexes grow, so what it sees first is its lowest.
func (c *ignoredCount) add(idx int64, x *engine.Ignored, p []engine.Value) {
	c.n++
	var v engine.Value
	if x.By >= 0 {
		v = p[x.By]
	}
	if len(c.reasons) > 0 {
		r := &c.reasons[0]
		if r.why == x.Why && r.by == x.By && r.vals[0].v.Identical(v) {
			return // the common case: as the first point
		}
	}
	c.addReason(ignoredReason{why: x.Why, by: x.By, first: idx, vals: []seenValue{{v, idx}}})
}

// addReason adds the points of o, a reason, to c.
func (c *ignoredCount) addReason(o ignoredReason) {
	j := slices.IndexFunc(c.reasons, func(r ignoredReason) bool { return r.why == o.why && r.by == o.by })
	if j < 0 {
		c.reasons = append(c.reasons, ignoredReason{why: o.why, by: o.by, first: o.first})
		j = len(c.reasons) - 1
	}
	r := &c.reasons[j]
	r.first = min(r.first, o.first)
	r.more = r.more || o.more
	for _, sv := range o.vals {
		if k := slices.IndexFunc(r.vals, func(x seenValue) bool { return x.v.Identical(sv.v) }); k >= 0 {
			r.vals[k].first = min(r.vals[k].first, sv.first)
		} else {
			r.vals = append(r.vals, sv)
		}
	}
	if len(r.vals) > maxValues {
		slices.SortFunc(r.vals, func(a, b seenValue) int { return cmp.Compare(a.first, b.first) })
		r.vals, r.more = r.vals[:maxValues:maxValues], true
	}
	if len(c.reasons) > maxReasons {
		slices.SortFunc(c.reasons, func(a, b ignoredReason) int { return cmp.Compare(a.first, b.first) })
		c.reasons, c.more = c.reasons[:maxReasons:maxReasons], true
	}
}

// mergeIgnored combines two workers' counts of a parameter.
func mergeIgnored(a, b ignoredCount) ignoredCount {
	out := ignoredCount{n: a.n + b.n, more: a.more || b.more}
	for _, r := range a.reasons {
		out.addReason(r)
	}
	for _, r := range b.reasons {
		out.addReason(r)
	}
	return out
}

// ignoring returns the engine's check of the parameters the study sets,
// or nil when it has none (or none applies).
func (s *Study) ignoring() func(p []engine.Value, dst []engine.Ignored) []engine.Ignored {
	ig, ok := s.Engine.(engine.Ignorer)
	if !ok || len(s.keys) == 0 {
		return nil
	}
	var vary []int
	for _, d := range s.Dims {
		vary = append(vary, d.Params...)
	}
	return ig.Ignoring(s.Base, vary)
}

// varied reports whether a dimension of the study sets parameter i.
func (s *Study) varied(i int) bool {
	for _, d := range s.Dims {
		if slices.Contains(d.Params, i) {
			return true
		}
	}
	return false
}

// ignoredKeys turns the counts into the study keys they concern, in the
// order of the study file; kept is the number of points.
func (s *Study) ignoredKeys(counts []ignoredCount, kept int64) []NoEffect {
	params := s.Engine.Params()
	var out []NoEffect
	for i := range counts {
		c := &counts[i]
		key, ok := s.keys[i]
		// [study] seed is the study's default for whatever the engine
		// draws at random: a study of points that draw nothing may keep it
		if c.n == 0 || !ok || key == "study.seed" {
			continue
		}
		x := NoEffect{Key: key, Line: locate(s.Text, keyPath(key)), Param: params[i].Name, Points: c.n, Of: kept, Varied: s.varied(i)}
		x.Msg = c.message(params, x.All())
		out = append(out, x)
	}
	slices.SortStableFunc(out, func(a, b NoEffect) int { return a.Line - b.Line })
	return out
}

// message says why points ignore the parameter: `routing_skew applies
// only to routing = "zipf" (every point has routing = "uniform")`.
func (c *ignoredCount) message(params []engine.Param, all bool) string {
	var parts []string
	reasons := slices.Clone(c.reasons)
	slices.SortFunc(reasons, func(a, b ignoredReason) int { return cmp.Compare(a.first, b.first) })
	for _, r := range reasons {
		if r.by < 0 {
			parts = append(parts, r.why)
			continue
		}
		seen := slices.Clone(r.vals)
		slices.SortFunc(seen, func(a, b seenValue) int { return cmp.Compare(a.first, b.first) })
		vals := make([]string, len(seen))
		for j, sv := range seen {
			vals[j] = Setting(params[r.by], sv.v)
			if j > 0 {
				vals[j] = strings.TrimPrefix(vals[j], params[r.by].Name+" = ")
			}
		}
		setting := strings.Join(vals, " or ")
		if r.more {
			setting += " or others"
		}
		switch {
		case len(c.reasons) > 1 || c.more:
			parts = append(parts, fmt.Sprintf("%s (at %s)", r.why, setting))
		case all:
			parts = append(parts, fmt.Sprintf("%s (every point has %s)", r.why, setting))
		default:
			parts = append(parts, fmt.Sprintf("%s; those points have %s", r.why, setting))
		}
	}
	if c.more {
		parts = append(parts, "and other reasons")
	}
	return strings.Join(parts, "; ")
}

// ignoredError is the error of the keys no point uses (nil if none): the
// first in the file, naming the others.
func (s *Study) ignoredError(keys []NoEffect) error {
	var all []NoEffect
	for _, x := range keys {
		if x.All() {
			all = append(all, x)
		}
	}
	if len(all) == 0 {
		return nil
	}
	x := all[0]
	msg := "has no effect on any point: " + x.Msg
	if len(all) > 1 {
		var more []string
		for _, y := range all[1:] {
			more = append(more, fmt.Sprintf("%s (line %d)", y.Key, y.Line))
		}
		msg += "; nor has " + strings.Join(more, ", ")
	}
	return &InputError{File: s.Path, Line: x.Line, Key: x.Key, Msg: msg}
}

// keyPath splits a dotted study key ("zip[0].top_k") for locate.
func keyPath(key string) []string {
	return strings.Split(strings.ReplaceAll(strings.ReplaceAll(key, "[", "."), "]", ""), ".")
}

// Setting formats a parameter's value as a study file would set it:
// routing = "uniform", num_experts = 0.
func Setting(p engine.Param, v engine.Value) string {
	if v.Kind == engine.String {
		return p.Name + " = " + strconv.Quote(v.S)
	}
	return p.Name + " = " + v.String()
}
