package funcs

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/pxq-dev/pxq/types"
)

// String functions. Lengths and positions count bytes, as Pixie's do.

func init() {
	register("contains", "whether s contains sub", sig(tB, containsKernel, tS, tS))
	register("length", "length of s in bytes", sig(tI, lengthKernel, tS))
	register("find", "byte index of the first sub in s, or -1",
		sig(tI, fn2(rStr, rStr, tI, func(s, sub string) int64 { return int64(strings.Index(s, sub)) }), tS, tS))
	register("substring", "s[pos:pos+len] (clamped to s); \"\" when pos < 0, pos > len(s) or len < 0",
		sig(tS, fn3(rStr, rInt, rInt, tS, substring), tS, tI, tI))
	register("tolower", "ASCII lower case", sig(tS, fn1(rStr, tS, asciiLower), tS))
	register("toupper", "ASCII upper case", sig(tS, fn1(rStr, tS, asciiUpper), tS))
	register("trim", "s without leading and trailing ASCII white space",
		sig(tS, fn1(rStr, tS, func(s string) string { return strings.Trim(s, " \t\n\v\f\r") }), tS))
	register("strip_prefix", "s without the prefix (1st argument) if s starts with it",
		sig(tS, fn2(rStr, rStr, tS, func(p, s string) string { return strings.TrimPrefix(s, p) }), tS, tS))
	register("hex_to_ascii", "the bytes that hex text encodes (\"\" if it is not hex)",
		sig(tS, fn1(rStr, tS, func(s string) string {
			b, err := hex.DecodeString(s)
			if err != nil {
				return ""
			}
			return string(b)
		}), tS))
	register("bytes_to_hex", "the bytes of s as hex text", sig(tS, fn1(rStr, tS, func(s string) string { return hex.EncodeToString([]byte(s)) }), tS))
	register("atoi", "s as a decimal int64, or the default (2nd argument) when it is not one",
		sig(tI, fn2(rStr, rInt, tI, func(s string, d int64) int64 {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return d
			}
			return v
		}), tS, tI))
	register("itoa", "an int64 as decimal text", sig(tS, fn1(rInt, tS, func(v int64) string { return strconv.FormatInt(v, 10) }), tI))
	register("split", "s split at every delimiter, as a JSON array of strings",
		sig(tS, fn2(rStr, rStr, tS, func(s, d string) string {
			b := marshalJSON(strings.Split(s, d))
			return string(b)
		}), tS, tS))
	RegisterScalar(&ScalarFunc{Name: "regex_match", Volatility: Immutable, Doc: "whether s (2nd argument) matches the RE2 pattern (1st, constant) as a whole",
		Overloads: []Overload{{Args: []types.DataType{tS, tS}, Ret: tB, InitArgs: 1, Kernel: regexMatchKernel}}})
	RegisterScalar(&ScalarFunc{Name: "replace", Volatility: Immutable, Doc: "s (2nd) with every match of the RE2 pattern (1st, constant) replaced by repl (3rd; \\1 refers to group 1)",
		Overloads: []Overload{{Args: []types.DataType{tS, tS, tS}, Ret: tS, InitArgs: 1, Kernel: replaceKernel}}})
}

func substring(s string, pos, n int64) string {
	if pos < 0 || n < 0 || pos > int64(len(s)) {
		return ""
	}
	end := pos + n
	if end > int64(len(s)) || end < pos {
		end = int64(len(s))
	}
	return s[pos:end]
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func asciiUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// containsKernel tests the value bytes in place.
func containsKernel(ctx *Context, args []Value, n int) (Value, error) {
	if args[1].IsConst() && !args[0].IsConst() {
		sub, err := ConstString(args[1].Const)
		if err != nil {
			return Value{}, err
		}
		off, data := StringParts(args[0].Array)
		bits := BoolBitmap(n)
		for i := 0; i < n; i++ {
			if strings.Contains(bytesString(data[off[i]:off[i+1]]), sub) {
				bits[i>>3] |= 1 << (uint(i) & 7)
			}
		}
		return Value{Array: NewBoolArray(bits, n)}, nil
	}
	return cmpKernel(rStr, strings.Contains)(ctx, args, n)
}

// regexCache holds compiled patterns by source (patterns are compile-time
// constants, so the set stays small).
var regexCache sync.Map

func compileRegex(pattern string, full bool) (*regexp.Regexp, error) {
	key := pattern
	if full {
		key = "\x00full\x00" + pattern
	}
	if re, ok := regexCache.Load(key); ok {
		return re.(*regexp.Regexp), nil
	}
	src := pattern
	if full {
		src = `^(?:` + pattern + `)$`
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("bad regular expression %q: %w", pattern, err)
	}
	regexCache.Store(key, re)
	return re, nil
}

func regexMatchKernel(ctx *Context, args []Value, n int) (Value, error) {
	p, err := ConstString(args[0].Const)
	if err != nil || !args[0].IsConst() {
		return Value{}, fmt.Errorf("the pattern must be a constant string")
	}
	re, err := compileRegex(p, true)
	if err != nil {
		return Value{}, err
	}
	return fn1(rStr, tB, re.MatchString)(ctx, args[1:], n)
}

// backref matches \1 … \99 in a replacement.
var backref = regexp.MustCompile(`\\(\d{1,2})`)

func replaceKernel(ctx *Context, args []Value, n int) (Value, error) {
	p, err := ConstString(args[0].Const)
	if err != nil || !args[0].IsConst() {
		return Value{}, fmt.Errorf("the pattern must be a constant string")
	}
	re, err := compileRegex(p, false)
	if err != nil {
		return Value{}, err
	}
	tmpl := func(r string) string {
		r = strings.ReplaceAll(r, "$", "$$")
		return backref.ReplaceAllString(r, "$${$1}")
	}
	if args[2].IsConst() {
		r, err := ConstString(args[2].Const)
		if err != nil {
			return Value{}, err
		}
		t := tmpl(r)
		return fn1(rStr, tS, func(s string) string { return re.ReplaceAllString(s, t) })(ctx, args[1:2], n)
	}
	return fn2(rStr, rStr, tS, func(s, r string) string { return re.ReplaceAllString(s, tmpl(r)) })(ctx, args[1:], n)
}

// lengthKernel reads lengths straight from the offsets.
func lengthKernel(ctx *Context, args []Value, n int) (Value, error) {
	if args[0].IsConst() {
		s, err := ConstString(args[0].Const)
		return Value{Const: int64(len(s))}, err
	}
	off, _ := StringParts(args[0].Array)
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(off[i+1] - off[i])
	}
	return Value{Array: NewInt64Array(out)}, nil
}
