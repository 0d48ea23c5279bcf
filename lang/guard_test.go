package lang

import (
	"fmt"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

// TestGuardedSemantics runs statements through pxq (whose rewrite turns
// operators, slices, methods and builtins into the guarded helpers) and
// through plain go.starlark.net, and compares the value of r: the guards
// must not change what a script computes.
func TestGuardedSemantics(t *testing.T) {
	cases := []string{
		"r = 'ab' + 'cd' + str(1)",
		"a = [1]\nb = a\na += [2, 3]\nr = (a, b)",
		"a = [1]\nb = a\na = a + [2]\nr = (a, b)",
		"t = (1, 2)\nt += (3,)\nr = t",
		"d = {'a': 1}\ne = d\nd |= {'b': 2}\nr = (d, e)",
		"d = {'a': 1}\nd = d | {'b': 2}\nr = d",
		"s = set([1, 2])\nr = (s | set([3]), s & set([2]), s - set([1]), s ^ set([2, 5]))",
		"r = ([0] * 3, 3 * [1, 2], (1,) * 2, 'ab' * 3, 2 * 'x', 'x' * -1, [1] * 0, b'ab' * 2)",
		"r = ('%s-%d-%r-%x-%o-%c-%%' % ('a', 42, 'b', 255, 8, 65), '%(k)s' % {'k': 'v'}, '%s' % (1,), '%s' % 'solo')",
		"r = ('{} {}'.format(1, 'a'), '{0}{0}{x}'.format('y', x=3), '{!r}'.format('q'), '{{}}'.format())",
		"r = ','.join(['a', 'b']) + '|'.join([]) + ''.join(('x', 'y'))",
		"r = ('abcabc'.replace('b', 'XX'), 'aaa'.replace('a', 'b', 2), 'ab'.replace('', '-'), 'abc'.replace('abc', ''))",
		"r = ('a b  c'.split(), 'a,b,,c'.split(','), 'a,b,c'.split(',', 1), 'a,b,c'.rsplit(',', 1), 'x\\ny\\r\\nz'.splitlines())",
		"r = ('Ab'.lower(), 'ab'.upper(), 'ab cd'.title(), 'ab'.capitalize(), 'abcb'.count('b'), 'abc'.find('c'), 'abc'.rfind('a'), 'abc'.index('b'))",
		"l = [3, 1, 2]\nl.extend([4])\nl.insert(0, 9)\nx = l.pop(1)\nl.remove(2)\nr = (l, x, l.index(4))",
		"d = {'a': 1, 'b': 2}\nd.update({'c': 3}, e=4)\nr = (d.items(), d.keys(), d.values(), d.get('a'), d.pop('e'), d.setdefault('z', 0), d)",
		"s = set([1])\ns.update([2, 3])\ns.add(4)\ns.discard(1)\ns.remove(2)\nr = (s, s.union([9]), s.intersection([3]), s.difference([3]), s.symmetric_difference([3, 7]), s.issubset([3, 4, 5]), set([3]).issuperset([3]))",
		"r = (list((1, 2)), tuple([1]), dict([('a', 1)], b=2), set([1, 1]), sorted([3, 1, 2]), sorted(['b', 'a'], key=len, reverse=True), reversed([1, 2]), enumerate(['a'], 1), zip([1, 2], 'ab'.elems()), zip())",
		"r = (str(1), str('s'), repr('s'), repr([1, 'a', (2,), {'k': None}]), str({1: [True, 1.5]}), bytes('ab'), int('12'), int('ff', 16), abs(-3), abs(-(1 << 100)))",
		"r = (1 << 70, (1 << 70) + 1, (1 << 70) - (1 << 69), (1 << 70) * 3, (1 << 70) // 3, (1 << 70) % 7, (1 << 70) >> 3, (1 << 70) | 1, (1 << 70) & 3, (1 << 70) ^ 1, -(1 << 70), ~5, -3, 7 / 2, 7 // 2, -7 % 3)",
		"r = (1 in [1, 2], 3 not in [1], 'b' in 'abc', 'k' in {'k': 1}, 2 in set([2]), (1, 2) in {(1, 2): 0})",
		"d = {}\nd['a'] = 1\nd['a'] += 2\nd[(1, 2)] = 3\nl = [1, 2]\nl[0] = 5\nl[-1] += 10\nr = (d, l)",
		"d = {'x': [1]}\ny = d['x']\nd['x'] += [2]\nr = (d, y)",
		"l = [[1], [2]]\nl[0][0] += 5\nl[1] += [3]\nr = l",
		"def f(*a, **k):\n  return (a, sorted(k.items()))\nr = (f(*[1, 2], **{'x': 3}), f(0, *(1,)))",
		"f = lambda x = [0] * 2: x\nr = f()",
		"r = getattr('a,b', 'split')(',') + [getattr([], 'append', None) != None, getattr('x', 'nope', 7)]",
		"j = ','.join\nr = (j(['p', 'q']), str(j), type(j))",
		"r = {(1, 'a'): 1, 'k': 2}[(1, 'a')]",
		"s = 'x'\nfor i in range(5):\n  s += s\nr = len(s)",
		"x = 0\nx += 1\nx -= 3\nx *= 4\nx //= 3\nx %= 5\nx <<= 2\nx >>= 1\nx |= 1\nx &= 7\nx ^= 2\nx /= 2\nr = x",
	}
	// Slices, exhaustively over small bounds.
	var sl []string
	for _, lo := range []string{"", "-7", "-2", "0", "1", "4", "9"} {
		for _, hi := range []string{"", "-7", "-1", "0", "2", "5", "9"} {
			for _, step := range []string{"", "1", "2", "-1", "-2", "-3"} {
				b := lo + ":" + hi
				if step != "" {
					b += ":" + step
				}
				sl = append(sl, fmt.Sprintf("[1, 2, 3, 4, 5][%s], 'abcde'[%s], (1, 2, 3)[%s], b'xyz'[%s]", b, b, b, b))
			}
		}
	}
	for i := 0; i < len(sl); i += 40 {
		cases = append(cases, "r = ("+strings.Join(sl[i:min(i+40, len(sl))], ", ")+")")
	}
	for _, c := range cases {
		want, err := plainStarlark(c)
		if err != nil {
			t.Fatalf("%q in plain Starlark: %v", c, err)
		}
		got := pxqValue(t, c)
		if got != want {
			t.Errorf("%q:\n pxq:      %s\n starlark: %s", c, got, want)
		}
	}
}

func plainStarlark(src string) (string, error) {
	th := &starlark.Thread{}
	g, err := starlark.ExecFileOptions(fileOptions, th, "plain.star", src, nil)
	if err != nil {
		return "", err
	}
	return g["r"].String(), nil
}

// pxqValue runs src as a PxL script and returns repr(r), which the
// script reports through fail.
func pxqValue(t *testing.T, src string) string {
	t.Helper()
	_, err := compile(t, "import px\n"+src+"\nfail(repr(r))\n", Options{})
	if err == nil {
		t.Fatalf("%q: no error", src)
	}
	le, ok := err.(*Error)
	if !ok || !strings.HasPrefix(le.Msg, "fail: ") {
		t.Fatalf("%q: %v", src, err)
	}
	return strings.TrimPrefix(le.Msg, "fail: ")
}

// TestGuardedErrors checks that a misuse of an operator still reports
// Starlark's error, at the operator.
func TestGuardedErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"x = 'a' - 1", "2:9: unknown binary op: string - int"},
		{"x = [1][::0]", "2:8: zero is not a valid slice step"},
		{"x = 1[1:]", "2:6: invalid slice operand int"},
		{"x = 'a' % (1, 2)", "2:9: too many arguments for format string"},
		{"x = {}['k']", `2:7: key "k" not in dict`},
		{"x = 'a'.nope", "has no .nope field or method"},
		{"x = __plus(1)", "__plus is pxq's own and takes 2 positional arguments"},
		{"x = __eq()", "__eq is pxq's own and takes 2 positional arguments"},
		{"x = 1 << 100000", "shift count too large"},
		{"x = -'a'", "unknown unary op: - string"},
	} {
		_, err := compile(t, "import px\n"+c.src+"\n", Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
		}
	}
}
