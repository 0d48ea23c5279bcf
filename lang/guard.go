package lang

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// This file holds the built-ins that charge the budget (budget.go): the
// helpers the rewrite calls in place of operators, slicing and the
// methods that build large values, and replacements for the universal
// functions that materialize sequences. Each checks the sizes of its
// operands, charges what the operation will build, then does what
// Starlark would have done.

type builtinFunc = func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)

// opBuiltins names the helper of each binary operator the rewrite guards.
var opBuiltins = map[syntax.Token]string{
	syntax.PLUS: "__plus", syntax.MINUS: "__minus", syntax.STAR: "__star", syntax.PERCENT: "__percent",
	syntax.PIPE: "__pipe", syntax.AMP: "__amp", syntax.CIRCUMFLEX: "__caret", syntax.LTLT: "__lshift",
	syntax.GTGT: "__rshift", syntax.SLASHSLASH: "__floordiv", syntax.SLASH: "__div",
}

// guarded holds the helpers and the replaced universal functions, by
// name; they are predeclared in every compilation.
var guarded = starlark.StringDict{}

func init() {
	for op, name := range opBuiltins {
		guarded[name] = starlark.NewBuiltin(name, fixedArgs(2, binaryBuiltin(op)))
	}
	for name, fn := range map[string]builtinFunc{
		"__iplus":  fixedArgs(2, inplaceBuiltin(syntax.PLUS)),
		"__ipipe":  fixedArgs(2, inplaceBuiltin(syntax.PIPE)),
		"__neg":    fixedArgs(1, unaryBuiltin(syntax.MINUS)),
		"__invert": fixedArgs(1, unaryBuiltin(syntax.TILDE)),
		"__slice":  fixedArgs(4, sliceBuiltin),
		"__attr":   fixedArgs(2, attrBuiltin),
		"__key":    fixedArgs(1, keyBuiltin),
		"__in":     fixedArgs(2, inBuiltin(syntax.IN)),
		"__notin":  fixedArgs(2, inBuiltin(syntax.NOT_IN)),
		"__args":   fixedArgs(1, starArgsBuiltin),
		"__kwargs": fixedArgs(1, starArgsBuiltin),
	} {
		guarded[name] = starlark.NewBuiltin(name, fn)
	}
	for name, g := range universeGuards {
		guarded[name] = wrapUniverse(name, g)
	}
	guarded["getattr"] = starlark.NewBuiltin("getattr", getattrBuiltin)
}

// checked returns v, or the error of checking it as an operator's result.
func checked(th *starlark.Thread, v starlark.Value, err error) (starlark.Value, error) {
	if err != nil {
		return nil, err
	}
	if err := budgetOf(th).checkResult(v); err != nil {
		return nil, err
	}
	return v, nil
}

// fixedArgs checks the arity of a helper: scripts can call them by name.
func fixedArgs(n int, fn builtinFunc) builtinFunc {
	return func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(args) != n || len(kwargs) != 0 {
			return nil, fmt.Errorf("%s is pxq's own and takes %d positional arguments", b.Name(), n)
		}
		return fn(th, b, args, kwargs)
	}
}

func binaryBuiltin(op syntax.Token) builtinFunc {
	return func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		return binary(th, op, args[0], args[1])
	}
}

func binary(th *starlark.Thread, op syntax.Token, x, y starlark.Value) (starlark.Value, error) {
	b := budgetOf(th)
	n, err := binarySize(op, x, y, b.remaining())
	if err != nil {
		return nil, err
	}
	if err := b.charge(n); err != nil {
		return nil, err
	}
	z, err := starlark.Binary(op, x, y)
	if err != nil {
		return nil, err
	}
	if err := b.checkResult(z); err != nil {
		return nil, err
	}
	return z, nil
}

// checkResult checks the result of an operator: an integer is charged, a
// column expression is checked.
func (b *budget) checkResult(z starlark.Value) error {
	switch z := z.(type) {
	case starlark.Int:
		return b.chargeInt(intBits(z))
	case *Expr:
		return b.checkExpr(z.e)
	}
	return nil
}

// binarySize returns the bytes x op y builds, checking integer results
// that would be too large before they are computed.
func binarySize(op syntax.Token, x, y starlark.Value, limit int64) (int64, error) {
	if xi, ok := x.(starlark.Int); ok {
		if yi, ok := y.(starlark.Int); ok {
			return intOpSize(op, xi, yi)
		}
	}
	switch op {
	case syntax.PLUS:
		switch x := x.(type) {
		case starlark.String:
			if y, ok := y.(starlark.String); ok {
				return int64(len(x)) + int64(len(y)), nil
			}
		case starlark.Bytes:
			if y, ok := y.(starlark.Bytes); ok {
				return int64(len(x)) + int64(len(y)), nil
			}
		case *starlark.List:
			if y, ok := y.(*starlark.List); ok {
				return headerBytes + slotBytes*int64(x.Len()+y.Len()), nil
			}
		case starlark.Tuple:
			if y, ok := y.(starlark.Tuple); ok {
				return headerBytes + slotBytes*int64(len(x)+len(y)), nil
			}
		}
	case syntax.STAR:
		if n, ok := y.(starlark.Int); ok {
			return repeatSize(x, n), nil
		}
		if n, ok := x.(starlark.Int); ok {
			return repeatSize(y, n), nil
		}
	case syntax.PERCENT:
		if f, ok := x.(starlark.String); ok {
			n, err := percentSize(string(f), y, limit)
			// strings.Builder grows by doubling: it allocates about
			// twice what it returns.
			return mulSize(n, 2), err
		}
	case syntax.MINUS, syntax.PIPE, syntax.AMP, syntax.CIRCUMFLEX:
		if xs, ok := x.(*starlark.Set); ok {
			if ys, ok := y.(*starlark.Set); ok {
				return headerBytes + entryBytes*int64(xs.Len()+ys.Len()), nil
			}
		}
		if xd, ok := x.(*starlark.Dict); ok {
			if yd, ok := y.(*starlark.Dict); ok {
				return headerBytes + entryBytes*int64(xd.Len()+yd.Len()), nil
			}
		}
	}
	return 0, nil
}

// intOpSize checks and sizes integer arithmetic: the result may be large
// only for +, -, *, <<, and bitwise operators copy their operands.
func intOpSize(op syntax.Token, x, y starlark.Int) (int64, error) {
	bx, by := intBits(x), intBits(y)
	if bx == 0 && by == 0 && op != syntax.STAR && op != syntax.LTLT {
		return 0, nil
	}
	var n int
	switch op {
	case syntax.STAR:
		if bx == 0 && by == 0 {
			return 0, nil // at most 128 bits
		}
		n = max(bx, 64) + max(by, 64)
	case syntax.LTLT:
		s, ok := y.Int64()
		if !ok || s < 0 || s > 512 {
			return 0, nil // Starlark reports it
		}
		n = max(bx, 64) + int(s)
	case syntax.PLUS, syntax.MINUS:
		n = max(bx, by) + 1
	default:
		return 0, nil // no larger than an operand
	}
	if n > maxIntBits {
		return 0, &limitError{msg: fmt.Sprintf("integer too large: more than %d bits", maxIntBits)}
	}
	return 0, nil // the result is charged once computed
}

// repeatSize is the size of seq * n.
func repeatSize(seq starlark.Value, n starlark.Int) int64 {
	count, ok := n.Int64()
	if !ok {
		if n.Sign() < 0 {
			return 0
		}
		count = 1 << 62
	}
	if count <= 0 {
		return 0
	}
	switch s := seq.(type) {
	case starlark.String:
		return mulSize(int64(len(s)), count)
	case starlark.Bytes:
		return mulSize(int64(len(s)), count)
	case *starlark.List:
		return addSize(headerBytes, mulSize(slotBytes*int64(s.Len()), count))
	case starlark.Tuple:
		return addSize(headerBytes, mulSize(slotBytes*int64(len(s)), count))
	}
	return 0
}

// percentSize bounds the length of format % x, following the conversions
// Starlark supports (%s %r %d %i %o %x %X %e %f %g %E %F %G %c %%, no
// widths). Where the format is wrong it stops: Starlark reports it.
func percentSize(format string, x starlark.Value, limit int64) (int64, error) {
	n := int64(len(format))
	tuple, isTuple := x.(starlark.Tuple)
	index := 0
	for n <= limit {
		i := strings.IndexByte(format, '%')
		if i < 0 || i+1 >= len(format) {
			break
		}
		format = format[i+1:]
		if format[0] == '%' {
			format = format[1:]
			continue
		}
		var arg starlark.Value
		if format[0] == '(' {
			j := strings.IndexByte(format, ')')
			m, ok := x.(starlark.Mapping)
			if j < 0 || !ok {
				break
			}
			v, found, err := m.Get(starlark.String(format[1:j]))
			if err != nil || !found {
				break
			}
			arg, format = v, format[j+1:]
		} else if isTuple {
			if index >= len(tuple) {
				break
			}
			arg = tuple[index]
		} else {
			if index > 0 {
				break
			}
			arg = x
		}
		if format == "" {
			break
		}
		c := format[0]
		format = format[1:]
		index++
		switch c {
		case 's', 'r':
			s, err := reprSize(arg, c == 'r', limit-n)
			if err != nil {
				return 0, err
			}
			n = addSize(n, s)
		case 'd', 'i', 'o', 'x', 'X':
			if i, ok := arg.(starlark.Int); ok {
				n = addSize(n, int64(intBits(i)/3+24))
			} else {
				n += 400 // a float converted to an int
			}
		case 'e', 'f', 'g', 'E', 'F', 'G':
			n += 400 // %f of 1e308 has 309 digits
		case 'c':
			n += utf8.UTFMax
		}
	}
	return n, nil
}

// formatSize bounds the length of format.format(*args, **kwargs).
func formatSize(format string, args starlark.Tuple, kwargs []starlark.Tuple, limit int64) (int64, error) {
	n := int64(len(format))
	auto := 0
	for n <= limit {
		i := strings.IndexByte(format, '{')
		if i < 0 {
			break
		}
		if i+1 < len(format) && format[i+1] == '{' {
			format = format[i+2:]
			continue
		}
		format = format[i+1:]
		j := strings.IndexByte(format, '}')
		if j < 0 {
			break
		}
		field := format[:j]
		format = format[j+1:]
		name, conv := field, "s"
		if k := strings.IndexByte(field, '!'); k >= 0 {
			name, conv = field[:k], field[k+1:]
		}
		if k := strings.IndexByte(name, ':'); k >= 0 {
			name = name[:k]
		}
		var arg starlark.Value
		if name == "" {
			if auto < len(args) {
				arg = args[auto]
			}
			auto++
		} else if num, err := strconv.Atoi(name); err == nil {
			if num >= 0 && num < len(args) {
				arg = args[num]
			}
		} else {
			for _, kv := range kwargs {
				if s, ok := kv[0].(starlark.String); ok && string(s) == name {
					arg = kv[1]
				}
			}
		}
		if arg == nil {
			break // format reports it
		}
		s, err := reprSize(arg, strings.HasPrefix(conv, "r"), limit-n)
		if err != nil {
			return 0, err
		}
		n = addSize(n, s)
	}
	return n, nil
}

// inplaceBuiltin implements x += y and x |= y: a list is extended and a
// dict updated in place, as Starlark does; other values get x + y, x | y.
func inplaceBuiltin(op syntax.Token) builtinFunc {
	return func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		x, y := args[0], args[1]
		b := budgetOf(th)
		switch x := x.(type) {
		case *starlark.List:
			if _, ok := y.(starlark.Iterable); ok && op == syntax.PLUS {
				if err := b.charge(growSize(int64(x.Len()), valueLen(y, b.remaining()/slotBytes+1))); err != nil {
					return nil, err
				}
				return callMethod(th, x, "extend", y)
			}
		case *starlark.Dict:
			if yd, ok := y.(*starlark.Dict); ok && op == syntax.PIPE {
				if err := b.charge(entryBytes * int64(yd.Len())); err != nil {
					return nil, err
				}
				return callMethod(th, x, "update", y)
			}
		}
		return binary(th, op, x, y)
	}
}

// callMethod calls a built-in method of x and returns x.
func callMethod(th *starlark.Thread, x starlark.HasAttrs, name string, args ...starlark.Value) (starlark.Value, error) {
	m, err := x.Attr(name)
	if err != nil {
		return nil, err
	}
	if _, err := starlark.Call(th, m, args, nil); err != nil {
		return nil, err
	}
	return x, nil
}

func unaryBuiltin(op syntax.Token) builtinFunc {
	return func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		z, err := starlark.Unary(op, args[0])
		if err != nil {
			return nil, err
		}
		if err := budgetOf(th).checkResult(z); err != nil {
			return nil, err
		}
		return z, nil
	}
}

// sliceBuiltin implements x[lo:hi:step] (None for a missing bound),
// charging the copy it makes.
func sliceBuiltin(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	x, lo, hi, stepV := args[0], args[1], args[2], args[3]
	s, ok := x.(starlark.Sliceable)
	if !ok {
		return nil, fmt.Errorf("invalid slice operand %s", x.Type())
	}
	step := 1
	if stepV != starlark.None {
		var err error
		if step, err = starlark.AsInt32(stepV); err != nil {
			return nil, fmt.Errorf("invalid slice step: %v", err)
		}
		if step == 0 {
			return nil, fmt.Errorf("zero is not a valid slice step")
		}
	}
	start, end, count, err := sliceBounds(lo, hi, s.Len(), step)
	if err != nil {
		return nil, err
	}
	var size int64
	switch x.(type) {
	case starlark.String, starlark.Bytes:
		if step != 1 { // a contiguous substring shares its bytes
			size = int64(count)
		}
	case *starlark.List, starlark.Tuple:
		size = headerBytes + slotBytes*int64(count)
	}
	if err := budgetOf(th).charge(size); err != nil {
		return nil, err
	}
	return s.Slice(start, end, step), nil
}

// sliceBounds resolves Python's slice bounds for a sequence of length n:
// negative indices count from the end, and out-of-range ones are clamped.
// It returns the start and end Sliceable.Slice wants and the length of
// the result.
func sliceBounds(lo, hi starlark.Value, n, step int) (start, end, count int, err error) {
	index := func(v starlark.Value, def int, what string) (int, error) {
		if v == starlark.None {
			return def, nil
		}
		i, err := starlark.AsInt32(v)
		if err != nil {
			return 0, fmt.Errorf("invalid %s index: %v", what, err)
		}
		if i < 0 {
			i += n
		}
		return i, nil
	}
	if step > 0 {
		if start, err = index(lo, 0, "start"); err != nil {
			return
		}
		if end, err = index(hi, n, "end"); err != nil {
			return
		}
		start, end = min(max(start, 0), n), min(max(end, 0), n)
		if end < start {
			end = start
		}
		return start, end, (end - start + step - 1) / step, nil
	}
	if start, err = index(lo, n-1, "start"); err != nil {
		return
	}
	if end, err = index(hi, -1, "end"); err != nil {
		return
	}
	// A negative index that stays negative after adding n means "before
	// the first element", as does -1 here.
	if lo != starlark.None && start < -1 {
		start = -1
	}
	if hi != starlark.None && end < -1 {
		end = -1
	}
	start, end = min(start, n-1), min(end, n-1)
	if start < end {
		start = end
	}
	return start, end, (start - end - step - 1) / -step, nil
}

// keyBuiltin implements the check of a dict key: d[k], {k: v}.
func keyBuiltin(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if err := checkKey(args[0]); err != nil {
		return nil, err
	}
	return args[0], nil
}

// inBuiltin implements x in y and x not in y: a key is checked, a scan
// counts as steps.
func inBuiltin(op syntax.Token) builtinFunc {
	return func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		x, y := args[0], args[1]
		switch y := y.(type) {
		case *starlark.Dict, *starlark.Set:
			if err := checkKey(x); err != nil {
				return nil, err
			}
		case starlark.String:
			budgetOf(th).work(len(y) / stepBytes)
		default:
			if n := starlark.Len(y); n > 0 {
				budgetOf(th).work(n / 16)
			}
		}
		return starlark.Binary(op, x, y)
	}
}

// starArgsBuiltin charges f(*x) and f(**x), which copy x: the
// interpreter appends the elements one by one (growSize) and the callee
// copies them into its *args tuple or **kwargs dict.
func starArgsBuiltin(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	bud := budgetOf(th)
	per := int64(6 * slotBytes)
	if b.Name() == "__kwargs" {
		per = entryBytes + headerBytes + 2*slotBytes
	}
	if n := valueLen(args[0], bud.remaining()/per+1); n > 0 {
		if err := bud.charge(mulSize(per, n)); err != nil {
			return nil, err
		}
	}
	return args[0], nil
}

// methodGuard checks and charges a call of a built-in method.
type methodGuard func(b *budget, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) error

// methodGuards are the guarded methods of Starlark's types; the rewrite
// turns x.name into __attr(x, 'name') for these names.
var methodGuards = map[string]map[string]methodGuard{
	"string": {
		"join":       stringJoin,
		"format":     stringFormat,
		"replace":    stringReplace,
		"split":      stringSplit,
		"rsplit":     stringSplit,
		"splitlines": stringSplitlines,
		"lower":      caseCopy,
		"upper":      caseCopy,
		"title":      caseCopy,
		"capitalize": caseCopy,
		"count":      scan,
		"find":       scan,
		"rfind":      scan,
		"index":      scan,
		"rindex":     scan,
	},
	"list": {
		"extend": func(b *budget, recv starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
			if len(args) != 1 {
				return nil
			}
			return b.charge(growSize(int64(recv.(*starlark.List).Len()), valueLen(args[0], b.remaining()/slotBytes+1)))
		},
		"insert": listShift,
		"pop":    listShift,
		"remove": scan,
		"index":  scan,
	},
	"dict": {
		"items":      sizedCopy(headerBytes + 3*slotBytes),
		"keys":       sizedCopy(slotBytes),
		"values":     sizedCopy(slotBytes),
		"update":     growBy(entryBytes),
		"get":        firstKey,
		"pop":        firstKey,
		"setdefault": firstKey,
	},
	"set": {
		"union":                setCopy,
		"intersection":         setCopy,
		"difference":           setCopy,
		"symmetric_difference": setCopy,
		"update":               growBy(entryBytes),
		"add":                  firstKey,
		"remove":               firstKey,
		"discard":              firstKey,
		"issubset":             scan,
		"issuperset":           scan,
	},
}

// guardedMethod reports whether name is a guarded method of some type.
func guardedMethod(name string) bool { return guardedMethods[name] }

var guardedMethods = func() map[string]bool {
	names := map[string]bool{}
	for _, m := range methodGuards {
		for name := range m {
			names[name] = true
		}
	}
	return names
}()

func guardsOf(x starlark.Value) map[string]methodGuard {
	switch x.(type) {
	case starlark.String:
		return methodGuards["string"]
	case *starlark.List:
		return methodGuards["list"]
	case *starlark.Dict:
		return methodGuards["dict"]
	case *starlark.Set:
		return methodGuards["set"]
	}
	return nil
}

func stringJoin(b *budget, recv starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
	if len(args) != 1 {
		return nil
	}
	it, ok := args[0].(starlark.Iterable)
	if !ok {
		return nil
	}
	sep := int64(len(recv.(starlark.String)))
	limit := b.remaining() / 2
	var n int64
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for i := 0; iter.Next(&x) && n <= limit; i++ {
		s, ok := x.(starlark.String)
		if !ok {
			break // join reports it
		}
		if i > 0 {
			n = addSize(n, sep)
		}
		n = addSize(n, int64(len(s)))
	}
	return b.charge(mulSize(n, 2)) // strings.Builder doubles
}

func stringFormat(b *budget, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) error {
	n, err := formatSize(string(recv.(starlark.String)), args, kwargs, b.remaining()/2)
	if err != nil {
		return err
	}
	return b.charge(mulSize(n, 2))
}

func stringReplace(b *budget, recv starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
	if len(args) < 2 {
		return nil
	}
	s := string(recv.(starlark.String))
	old, ok1 := args[0].(starlark.String)
	new, ok2 := args[1].(starlark.String)
	if !ok1 || !ok2 || len(new) <= len(old) {
		return b.charge(int64(len(s)))
	}
	count := int64(strings.Count(s, string(old)))
	if len(args) > 2 {
		if c, ok := args[2].(starlark.Int); ok {
			if c64, ok := c.Int64(); ok && c64 >= 0 && c64 < count {
				count = c64
			}
		}
	}
	return b.charge(addSize(int64(len(s)), mulSize(count, int64(len(new)-len(old)))))
}

func stringSplit(b *budget, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) error {
	s := string(recv.(starlark.String))
	var sep starlark.Value = starlark.None
	maxsplit := -1
	if err := starlark.UnpackArgs("split", args, kwargs, "sep?", &sep, "maxsplit?", &maxsplit); err != nil {
		return nil // split reports it
	}
	var pieces int
	if str, ok := sep.(starlark.String); ok && str != "" {
		pieces = strings.Count(s, string(str)) + 1
	} else {
		pieces = countFields(s)
	}
	if maxsplit >= 0 && maxsplit+1 < pieces {
		pieces = maxsplit + 1
	}
	b.work(len(s) / stepBytes)
	return b.charge(headerBytes + pieceBytes*int64(pieces))
}

// countFields counts the words split() without a separator returns.
func countFields(s string) int {
	n, in := 0, false
	for i := 0; i < len(s); i++ {
		space := s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')
		if !space && !in {
			n++
		}
		in = !space
	}
	// Unicode spaces only split more finely than bytes do if they
	// are multi-byte: at most one more piece per such rune.
	if !isASCII(s) {
		n += utf8.RuneCountInString(s) / 2
	}
	return n
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func stringSplitlines(b *budget, recv starlark.Value, _ starlark.Tuple, _ []starlark.Tuple) error {
	s := string(recv.(starlark.String))
	pieces := strings.Count(s, "\n") + strings.Count(s, "\r") + 1
	return b.charge(headerBytes + pieceBytes*int64(pieces))
}

// caseCopy charges lower(), upper()…: a copy that Unicode case mapping
// may make up to half as long again.
func caseCopy(b *budget, recv starlark.Value, _ starlark.Tuple, _ []starlark.Tuple) error {
	n := int64(len(recv.(starlark.String)))
	return b.charge(n + n/2)
}

// scan counts the linear work of a search or an insertion as steps.
func scan(b *budget, recv starlark.Value, _ starlark.Tuple, _ []starlark.Tuple) error {
	if s, ok := recv.(starlark.String); ok {
		b.work(len(s) / stepBytes)
	} else if n := starlark.Len(recv); n > 0 {
		b.work(n / 16)
	} else if s, ok := recv.(*starlark.Set); ok {
		b.work(s.Len() / 16)
	}
	return nil
}

// listShift counts the elements that insert(i, x) and pop(i) move as
// steps.
func listShift(b *budget, recv starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
	n := recv.(*starlark.List).Len()
	if len(args) == 0 {
		return nil // pop() of the last element
	}
	i, err := starlark.AsInt32(args[0])
	if err != nil {
		return nil // the method reports it
	}
	if i < 0 {
		i += n
	}
	if i >= 0 && i < n {
		b.work((n - i) / 16)
	}
	return nil
}

// sizedCopy charges a method that returns a list of per bytes an entry.
func sizedCopy(per int64) methodGuard {
	return func(b *budget, recv starlark.Value, _ starlark.Tuple, _ []starlark.Tuple) error {
		return b.charge(headerBytes + per*int64(recv.(*starlark.Dict).Len()))
	}
}

// growBy charges update(iterable, **kwargs): per bytes an element.
func growBy(per int64) methodGuard {
	return func(b *budget, _ starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) error {
		n := int64(len(kwargs))
		for _, a := range args {
			if l := valueLen(a, b.remaining()/per+1); l > 0 {
				n = addSize(n, l)
			}
		}
		return b.charge(mulSize(per, n))
	}
}

func setCopy(b *budget, recv starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
	n := int64(recv.(*starlark.Set).Len())
	for _, a := range args {
		if l := valueLen(a, b.remaining()/entryBytes+1); l > 0 {
			n = addSize(n, l)
		}
	}
	return b.charge(addSize(headerBytes, mulSize(entryBytes, n)))
}

func firstKey(_ *budget, _ starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
	if len(args) > 0 {
		return checkKey(args[0])
	}
	return nil
}

// attrBuiltin implements x.name for the names of guarded methods: the
// method is returned wrapped in its check.
func attrBuiltin(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	name, ok := args[1].(starlark.String)
	if !ok {
		return nil, fmt.Errorf("__attr: want a string name, got %s", args[1].Type())
	}
	return getAttr(args[0], string(name))
}

func getAttr(x starlark.Value, name string) (starlark.Value, error) {
	ha, ok := x.(starlark.HasAttrs)
	if !ok {
		return nil, fmt.Errorf("%s has no .%s field or method", x.Type(), name)
	}
	v, err := ha.Attr(name)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("%s has no .%s field or method%s", x.Type(), name, didYouMean(name, ha.AttrNames()))
	}
	if g := guardsOf(x)[name]; g != nil {
		if m, ok := v.(*starlark.Builtin); ok {
			return guardMethod(m, g), nil
		}
	}
	return v, nil
}

func guardMethod(m *starlark.Builtin, g methodGuard) *starlark.Builtin {
	return starlark.NewBuiltin(m.Name(), func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := g(budgetOf(th), m.Receiver(), args, kwargs); err != nil {
			return nil, err
		}
		return m.CallInternal(th, args, kwargs)
	}).BindReceiver(m.Receiver())
}

// getattrBuiltin is getattr(x, name[, default]) returning guarded
// methods.
func getattrBuiltin(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) >= 2 && len(kwargs) == 0 {
		if name, ok := args[1].(starlark.String); ok && guardsOf(args[0])[string(name)] != nil {
			return getAttr(args[0], string(name))
		}
	}
	return starlark.Universe["getattr"].(*starlark.Builtin).CallInternal(th, args, kwargs)
}

// universeGuards check the universal functions pxq replaces.
var universeGuards = map[string]methodGuard{
	"list":      firstLen(slotBytes),
	"tuple":     firstLen(slotBytes),
	"reversed":  firstLen(slotBytes),
	"enumerate": firstLen(headerBytes + 3*slotBytes),
	"set":       keysOf(false),
	"dict":      keysOf(true),
	"sorted": func(b *budget, _ starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) error {
		per := int64(slotBytes)
		for _, kv := range kwargs {
			if kv[0] == starlark.String("key") {
				per *= 2 // the keys are kept beside the values
			}
		}
		return firstLen(per)(b, nil, args, kwargs)
	},
	"zip": func(b *budget, _ starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
		rows := int64(-1)
		for _, a := range args {
			if n := valueLen(a, b.remaining()/slotBytes+1); n >= 0 && (rows < 0 || n < rows) {
				rows = n
			}
		}
		return b.charge(mulSize(rows, headerBytes+slotBytes*int64(len(args)+1)))
	},
	"str":   textOf(false, false),
	"repr":  textOf(true, false),
	"print": textOf(false, true),
	"fail":  textOf(false, true),
	"bytes": func(b *budget, _ starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
		if len(args) == 1 {
			if s, ok := args[0].(starlark.String); ok {
				return b.charge(int64(len(s)))
			}
		}
		return firstLen(1)(b, nil, args, nil)
	},
	"int": func(_ *budget, _ starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
		if len(args) > 0 {
			if s, ok := args[0].(starlark.String); ok && len(s) > maxIntDigits {
				return &limitError{msg: fmt.Sprintf("int: the string has more than %d digits", maxIntDigits)}
			}
		}
		return nil
	},
	"abs": func(_ *budget, _ starlark.Value, _ starlark.Tuple, _ []starlark.Tuple) error { return nil },
}

// wrapUniverse returns Starlark's universal function name checked by g;
// an integer result is checked too.
func wrapUniverse(name string, g methodGuard) *starlark.Builtin {
	orig := starlark.Universe[name].(*starlark.Builtin)
	return starlark.NewBuiltin(name, func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		b := budgetOf(th)
		if err := g(b, nil, args, kwargs); err != nil {
			return nil, err
		}
		v, err := orig.CallInternal(th, args, kwargs)
		if err != nil {
			return nil, err
		}
		if i, ok := v.(starlark.Int); ok {
			if err := b.chargeInt(intBits(i)); err != nil {
				return nil, err
			}
		}
		return v, nil
	})
}

// firstLen charges per bytes an element of the first argument.
func firstLen(per int64) methodGuard {
	return func(b *budget, _ starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
		if len(args) == 0 {
			return nil
		}
		n := valueLen(args[0], b.remaining()/per+1)
		return b.charge(addSize(headerBytes, mulSize(per, n)))
	}
}

// keysOf charges set(x) and dict(x, **kw) and checks their keys (for a
// dict, the first element of each pair).
func keysOf(pairs bool) methodGuard {
	return func(b *budget, _ starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) error {
		n := int64(len(kwargs))
		if len(args) > 0 {
			if l := valueLen(args[0], b.remaining()/entryBytes+1); l > 0 {
				n = addSize(n, l)
			}
		}
		if err := b.charge(addSize(headerBytes, mulSize(entryBytes, n))); err != nil {
			return err
		}
		if len(args) == 0 {
			return nil
		}
		if _, ok := args[0].(*starlark.Dict); ok {
			return nil // its keys were checked when it was built
		}
		it, ok := args[0].(starlark.Iterable)
		if !ok {
			return nil
		}
		iter := it.Iterate()
		defer iter.Done()
		var x starlark.Value
		for iter.Next(&x) {
			if pairs {
				if t, ok := x.(starlark.Tuple); ok && len(t) == 2 {
					x = t[0]
				} else if l, ok := x.(*starlark.List); ok && l.Len() == 2 {
					x = l.Index(0)
				}
			}
			if err := checkKey(x); err != nil {
				return err
			}
		}
		return nil
	}
}

// textOf charges the text of the arguments of str and repr (joined is
// false: str of a string is itself) and of print and fail (joined: the
// text of all the arguments is copied into one).
func textOf(quoted, joined bool) methodGuard {
	return func(b *budget, _ starlark.Value, args starlark.Tuple, _ []starlark.Tuple) error {
		var n int64
		for _, a := range args {
			if _, ok := a.(starlark.String); ok && !joined && !quoted {
				continue
			}
			s, err := reprSize(a, quoted, b.remaining()-n)
			if err != nil {
				return err
			}
			n = addSize(n, s)
		}
		return b.charge(mulSize(n, 2))
	}
}
