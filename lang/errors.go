package lang

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Error is a script's mistake: a compile error at a position of the
// user's script, or one found before the script ran (an unknown script,
// a bad argument), with no position (Line 0) and perhaps no File. It is
// pxq's one compile-error type; the servers and the UI map it to their
// wire forms.
type Error struct {
	File      string
	Line, Col int
	Msg       string
	// cause is ErrLimit for a script that went over a limit.
	cause error
}

// Unwrap returns ErrLimit for a script that went over one of its limits.
func (e *Error) Unwrap() error { return e.cause }

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.File != "":
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// toError turns a parse, resolve or evaluation error into an *Error at the
// innermost position in the script.
func toError(filename string, err error) error {
	if err == nil {
		return nil
	}
	var le *Error
	if errors.As(err, &le) {
		return le
	}
	var se syntax.Error
	if errors.As(err, &se) {
		return &Error{File: filename, Line: int(se.Pos.Line), Col: int(se.Pos.Col), Msg: se.Msg}
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		out := &Error{File: filename, Msg: cleanMsg(ee.Msg)}
		if errors.Is(err, ErrLimit) || ee.Msg == stepsMsg {
			out.cause = ErrLimit
		}
		if len(out.Msg) > maxMsg {
			// fail(x) and a missing dict key print values, which may be large.
			out.Msg = strings.ToValidUTF8(out.Msg[:maxMsg], "") + "…"
		}
		// The innermost frame with a position in the script is where the
		// user's code went wrong.
		for i := len(ee.CallStack) - 1; i >= 0; i-- {
			fr := ee.CallStack[i]
			if fr.Pos.Line > 0 && fr.Pos.Filename() == filename {
				out.Line, out.Col = int(fr.Pos.Line), int(fr.Pos.Col)
				break
			}
		}
		return out
	}
	var rl resolve.ErrorList
	if errors.As(err, &rl) {
		e := rl[0]
		return &Error{File: filename, Line: int(e.Pos.Line), Col: int(e.Pos.Col), Msg: resolveHint(e.Msg)}
	}
	return &Error{File: filename, Msg: err.Error()}
}

// stepsMsg is go.starlark.net's error for a thread over its step limit.
const stepsMsg = "Starlark computation cancelled: too many steps"

// maxMsg bounds the length of an error message.
const maxMsg = 4096

// cleanMsg drops the "fn: " prefix Starlark adds to builtin errors when the
// message already says what it needs to.
func cleanMsg(m string) string {
	for _, p := range []string{"__setcol: ", "__eq: ", "__ne: ", "__lt: ", "__gt: ", "__le: ", "__ge: ", "__and: ", "__or: ", "__not: "} {
		m = strings.TrimPrefix(m, p)
	}
	return m
}

// nearest returns the candidate closest to name by edit distance, if it is
// close enough to be a plausible typo.
func nearest(name string, candidates []string) string {
	best, bestD, bestScore := "", 1<<30, 1<<30
	lname := strings.ToLower(name)
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := editDistance(lname, lc)
		// Among equally distant names prefer one that starts alike or
		// contains the typed letters in order (cnt → count).
		score := 4 * d
		if lname != "" && lc != "" && lname[0] == lc[0] {
			score--
		}
		if subsequence(lname, lc) {
			score -= 2
		}
		if score < bestScore || (score == bestScore && c < best) {
			best, bestD, bestScore = c, d, score
		}
	}
	if best == "" || bestD > max(2, len(name)/3) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// didYouMean formats a hint for name among candidates, or "".
func didYouMean(name string, candidates []string) string {
	if n := nearest(name, candidates); n != "" {
		return fmt.Sprintf(" (did you mean %q?)", n)
	}
	return ""
}

// columnList formats the columns that do exist, for unknown-column errors.
func columnList(names []string) string {
	return strings.Join(names, ", ")
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// resolveHint adds what the user most likely needs to a resolver message.
func resolveHint(msg string) string {
	if strings.HasPrefix(msg, "undefined: px") {
		return msg + " (add `import px` at the top of the script)"
	}
	return msg
}

// subsequence reports whether the bytes of a appear in b in order.
func subsequence(a, b string) bool {
	i := 0
	for j := 0; j < len(b) && i < len(a); j++ {
		if a[i] == b[j] {
			i++
		}
	}
	return i == len(a)
}
