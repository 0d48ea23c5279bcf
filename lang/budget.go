package lang

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"

	"go.starlark.net/starlark"

	"github.com/pxq-dev/pxq/plan"
)

// A script's evaluation builds Starlark values (strings, lists, dicts…)
// before it builds a plan. go.starlark.net has no allocation hooks, so
// pxq charges a byte budget in the places where one step can build a
// large value: the operators (which the rewrite turns into calls of
// guarded built-ins), slicing, the methods that copy or grow (join,
// format, replace, split, extend, items…) and the built-in functions
// that materialize sequences (list, tuple, dict, sorted, zip…). What is
// left (a list literal, an append, a dict entry) adds a few words per
// execution step and is bounded by the step limit.
//
// Charges are cumulative: a value built and dropped still counts, so the
// budget bounds everything the script allocates in those places, garbage
// included, and with it the work the copies cost. Each charge also
// counts as execution steps (one per stepBytes).

// Defaults of the limits in Options.
const (
	DefaultMaxMemory  = 256 << 20
	DefaultMaxOutputs = 100
)

// ErrLimit is wrapped by the *Error of a script that went over one of its
// limits (memory, outputs, steps, plan size), so that a server can tell
// them from mistakes in the script: errors.Is(err, lang.ErrLimit).
var ErrLimit = errors.New("script limit exceeded")

// Sizes charged for the values a script builds, measured on
// go.starlark.net's types with the allocations their growth makes.
const (
	slotBytes = 16 // a Value in a list or a tuple
	// entryBytes is a dict or set entry: 56 bytes in a bucket of 8 at
	// most 6.5/8 full, and the tables it outgrew.
	entryBytes  = 160
	headerBytes = 32 // a list, tuple, dict or string header
	pieceBytes  = 32 // a substring in a list: its slot and its header
	stepBytes   = 256
	// maxIntBits bounds the integers a script may build: arithmetic on
	// them stays fast, and so does printing them.
	maxIntBits = 1 << 16
	// maxIntDigits bounds int(s) and integer literals: Go parses decimal
	// strings in quadratic time.
	maxIntDigits = 20_000
	// maxValueDepth bounds the nesting of values that are printed or
	// hashed by pxq's checks.
	maxValueDepth = 1000
	// maxKeyBytes bounds a tuple used as a dict key or set element,
	// whose hashing go.starlark.net does not bound.
	maxKeyBytes = 16 << 20
)

const budgetKey = "pxq.budget"

// budget is the memory account of one compilation, kept as a thread
// local.
type budget struct {
	limit int64
	used  int64
	th    *starlark.Thread
	exprs map[*plan.Call]exprStat // see checkExpr
}

func newBudget(th *starlark.Thread, limit int64) *budget {
	b := &budget{limit: limit, th: th}
	th.SetLocal(budgetKey, b)
	return b
}

// budgetOf returns the budget of th, or nil (no limit).
func budgetOf(th *starlark.Thread) *budget {
	if th == nil {
		return nil
	}
	b, _ := th.Local(budgetKey).(*budget)
	return b
}

// charge accounts for n bytes about to be built.
func (b *budget) charge(n int64) error {
	if b == nil || n <= 0 {
		return nil
	}
	if n > b.limit-b.used {
		b.used = b.limit
		return &limitError{msg: fmt.Sprintf("the script builds values of more than %s (limit: --script-memory)", formatBytes(b.limit))}
	}
	b.used += n
	b.th.Steps += uint64(n / stepBytes)
	return nil
}

// remaining returns how many bytes may still be charged.
func (b *budget) remaining() int64 {
	if b == nil {
		return math.MaxInt64
	}
	return b.limit - b.used
}

// work counts n execution steps for a built-in that does work in
// proportion to a size without building a value (a list insert, a scan).
func (b *budget) work(n int) {
	if b != nil && n > 0 {
		b.th.Steps += uint64(n)
	}
}

// limitError is a script going over a limit; it wraps ErrLimit.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }
func (e *limitError) Unwrap() error { return ErrLimit }

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// mulSize and addSize are saturating: sizes the script asks for may
// overflow int64.
func mulSize(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

func addSize(xs ...int64) int64 {
	var s int64
	for _, x := range xs {
		if x > 0 {
			if s > math.MaxInt64-x {
				return math.MaxInt64
			}
			s += x
		}
	}
	return s
}

// growSize is the size of appending m elements to a list of n: Go
// grows a slice by a quarter when the addition is small (about five
// slots allocated an element over the growth) and to the size needed when
// it is large (a copy of the list).
func growSize(n, m int64) int64 {
	if m <= 0 {
		return 0
	}
	return mulSize(slotBytes, min(addSize(n, m), mulSize(5, m)))
}

// intBits returns the size in bits of x, 0 for the ints that fit a word
// (which cost nothing to build).
func intBits(x starlark.Int) int {
	if _, ok := x.Int64(); ok {
		return 0
	}
	return x.BigInt().BitLen()
}

// chargeInt checks an integer result against maxIntBits and charges its
// size.
func (b *budget) chargeInt(bitLen int) error {
	if bitLen > maxIntBits {
		return &limitError{msg: fmt.Sprintf("integer too large: more than %d bits", maxIntBits)}
	}
	return b.charge(int64(bitLen / 8))
}

// valueLen returns the number of elements of x, iterating over it (up to
// limit elements) when it has no length. It returns -1 for values that
// are not iterable.
func valueLen(x starlark.Value, limit int64) int64 {
	if n := starlark.Len(x); n >= 0 {
		return int64(n)
	}
	it, ok := x.(starlark.Iterable)
	if !ok {
		return -1
	}
	iter := it.Iterate()
	defer iter.Done()
	var v starlark.Value
	var n int64
	for iter.Next(&v) {
		n++
		if n > limit {
			break
		}
	}
	return n
}

// reprSize bounds the length of the text of x as str (quoted false) or
// repr (quoted true) would write it. It stops counting past limit, and
// fails for values nested deeper than maxValueDepth.
func reprSize(x starlark.Value, quoted bool, limit int64) (int64, error) {
	if s, ok := x.(starlark.String); ok && !quoted {
		return int64(len(s)), nil
	}
	w := &sizeWalker{limit: limit}
	if err := w.walk(x, 0); err != nil {
		return 0, err
	}
	return w.n, nil
}

type sizeWalker struct {
	n, limit int64
	path     []starlark.Value // lists and dicts being written, for cycles
	// lists and tuples hold the sizes of those already measured (a tuple
	// by its first element): a value that holds another many times, or a
	// tuple that holds itself twice forty times over, is measured once.
	lists  map[*starlark.List]int64
	tuples map[*starlark.Value]int64
}

var errTooDeep = &limitError{msg: fmt.Sprintf("value nested more than %d levels deep", maxValueDepth)}

func (w *sizeWalker) add(n int64) { w.n = addSize(w.n, n) }

func (w *sizeWalker) walk(x starlark.Value, depth int) error {
	if w.n > w.limit {
		return nil
	}
	if depth > maxValueDepth {
		return errTooDeep
	}
	switch x := x.(type) {
	case starlark.NoneType, starlark.Bool:
		w.add(5)
	case starlark.Int:
		w.add(int64(intBits(x))*3/10 + 21)
	case starlark.Float:
		w.add(32)
	case starlark.String:
		w.add(quotedSize(string(x)))
	case starlark.Bytes:
		w.add(quotedSize(string(x)) + 1)
	case *starlark.List:
		if n, ok := w.lists[x]; ok {
			w.add(n)
			return nil
		}
		if w.onPath(x) {
			w.add(5) // [...]
			return nil
		}
		w.path = append(w.path, x)
		before := w.n
		w.add(2)
		for i := 0; i < x.Len() && w.n <= w.limit; i++ {
			w.add(2)
			if err := w.walk(x.Index(i), depth+1); err != nil {
				return err
			}
		}
		w.path = w.path[:len(w.path)-1]
		if w.lists == nil {
			w.lists = map[*starlark.List]int64{}
		}
		w.lists[x] = w.n - before
	case starlark.Tuple:
		if len(x) > 0 {
			if n, ok := w.tuples[&x[0]]; ok {
				w.add(n)
				return nil
			}
		}
		before := w.n
		w.add(3)
		for _, e := range x {
			if w.n > w.limit {
				break
			}
			w.add(2)
			if err := w.walk(e, depth+1); err != nil {
				return err
			}
		}
		if len(x) > 0 {
			if w.tuples == nil {
				w.tuples = map[*starlark.Value]int64{}
			}
			w.tuples[&x[0]] = w.n - before
		}
	case *starlark.Dict:
		w.add(2)
		if w.onPath(x) {
			w.add(3)
			return nil
		}
		w.path = append(w.path, x)
		defer func() { w.path = w.path[:len(w.path)-1] }()
		for k, v := range x.Entries() {
			if w.n > w.limit {
				break
			}
			w.add(4)
			if err := w.walk(k, depth+1); err != nil {
				return err
			}
			if err := w.walk(v, depth+1); err != nil {
				return err
			}
		}
	case *starlark.Set:
		w.add(7)
		for e := range x.Elements() {
			if w.n > w.limit {
				break
			}
			w.add(2)
			if err := w.walk(e, depth+1); err != nil {
				return err
			}
		}
	default:
		if t := x.Type(); strings.HasPrefix(t, "string.") || strings.HasPrefix(t, "bytes.") {
			// s.elems() and the like print s.
			w.add(4*valueLen(x, w.limit) + 32)
			return nil
		}
		// Functions, modules, ranges, pxq's own values: their text is
		// short (a DataFrame prints its columns, not its rows).
		w.add(int64(len(x.String())))
	}
	return nil
}

func (w *sizeWalker) onPath(x starlark.Value) bool {
	for _, p := range w.path {
		if p == x {
			return true
		}
	}
	return false
}

// quotedSize bounds the length of a quoted string: escapes take at most
// four bytes per byte (\xff).
func quotedSize(s string) int64 {
	if len(s) < 256 {
		return int64(4*len(s) + 2)
	}
	n := int64(2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			n++
		} else {
			n += 4
		}
	}
	return n
}

// checkKey bounds the work of hashing x and the text of an error that
// names it: go.starlark.net hashes and prints a tuple by walking it, and
// a tuple that holds itself twice, forty times over, would take forever.
func checkKey(x starlark.Value) error {
	t, ok := x.(starlark.Tuple)
	if !ok {
		return nil
	}
	var n int64
	return keySize(t, 0, &n)
}

func keySize(t starlark.Tuple, depth int, n *int64) error {
	if depth > maxValueDepth {
		return errTooDeep
	}
	for _, e := range t {
		*n += slotBytes
		switch e := e.(type) {
		case starlark.String:
			*n += int64(len(e))
		case starlark.Bytes:
			*n += int64(len(e))
		case starlark.Tuple:
			if err := keySize(e, depth+1, n); err != nil {
				return err
			}
		}
		if *n > maxKeyBytes {
			return &limitError{msg: fmt.Sprintf("a dict key or set element may not hold more than %s", formatBytes(maxKeyBytes))}
		}
	}
	return nil
}

// Column expressions are DAGs: e = e + e forty times over is eighty
// steps, but the planner and the executor walk expressions as trees, of
// 2^40 terms. The budget counts terms and depth of each expression a
// script builds, remembering those of the calls it has seen, so that
// checking a new expression costs the number of its arguments.
const (
	maxExprTerms = 1 << 18
	maxExprDepth = 10_000
)

type exprStat struct{ terms, depth int }

// checkExpr checks the size of e as a tree.
func (b *budget) checkExpr(e plan.Expr) error {
	if b == nil {
		return nil
	}
	st, err := b.exprStat(e, 0)
	if err != nil {
		return err
	}
	if st.terms > maxExprTerms {
		return &limitError{msg: fmt.Sprintf("a column expression may have at most %d terms", maxExprTerms)}
	}
	return nil
}

func (b *budget) exprStat(e plan.Expr, depth int) (exprStat, error) {
	c, ok := e.(*plan.Call)
	if !ok {
		return exprStat{1, 1}, nil
	}
	if st, ok := b.exprs[c]; ok {
		return st, nil
	}
	if depth > maxExprDepth {
		return exprStat{}, errExprDepth
	}
	st := exprStat{terms: 1}
	for _, a := range c.Args {
		as, err := b.exprStat(a, depth+1)
		if err != nil {
			return exprStat{}, err
		}
		st.terms = min(st.terms+as.terms, maxExprTerms+1)
		st.depth = max(st.depth, as.depth+1)
	}
	if st.depth > maxExprDepth {
		return exprStat{}, errExprDepth
	}
	if b.exprs == nil {
		b.exprs = map[*plan.Call]exprStat{}
	}
	b.exprs[c] = st
	return st, nil
}

var errExprDepth = &limitError{msg: fmt.Sprintf("a column expression may be nested at most %d deep", maxExprDepth)}

// chargeNode charges a plan node: a Map holds an expression per column,
// and a script that adds columns one by one builds a Map per column.
func (b *budget) chargeNode(n plan.Node) error {
	size := int64(256)
	if m, ok := n.(*plan.Map); ok {
		size += 128 * int64(len(m.Exprs))
	}
	return b.charge(size)
}
