package wire

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTakeAndCString(t *testing.T) {
	b := []byte("ab\x00cd")
	if head, rest, ok := Take(b, 2); string(head) != "ab" || string(rest) != "\x00cd" || !ok {
		t.Errorf("Take 2 = %q %q %v", head, rest, ok)
	}
	for _, n := range []int{-1, 6} {
		if head, rest, ok := Take(b, n); string(head) != string(b) || rest != nil || ok {
			t.Errorf("Take %d = %q %q %v", n, head, rest, ok)
		}
	}
	if s, rest, ok := CString(b); string(s) != "ab" || string(rest) != "cd" || !ok {
		t.Errorf("CString = %q %q %v", s, rest, ok)
	}
	if s, rest, ok := CString([]byte("cd")); string(s) != "cd" || rest != nil || ok {
		t.Errorf("CString without a NUL = %q %q %v", s, rest, ok)
	}
}

func TestAppendCapped(t *testing.T) {
	for _, c := range []struct {
		limit int
		want  string
	}{{0, "x"}, {3, "xab"}, {4, "xabc"}, {5, "xabcd"}, {9, "xabcde"}} {
		if got := string(AppendCapped([]byte("x"), c.limit, "ab", "cd", "e")); got != c.want {
			t.Errorf("strings to %d: %q, want %q", c.limit, got, c.want)
		}
		if got := string(AppendCapped([]byte("x"), c.limit, []byte("ab"), []byte("cd"), []byte("e"))); got != c.want {
			t.Errorf("bytes to %d: %q, want %q", c.limit, got, c.want)
		}
	}
}

// TestAppendJSONString checks the strings against encoding/json: valid
// JSON that decodes to the text, with invalid UTF-8 as U+FFFD.
func TestAppendJSONString(t *testing.T) {
	cases := []string{"", "plain", `q"uo\te`, "\n\r\t\x00\x1f\x7f", "héllo ☃ 😀", "\xff\xfe", "a\xe2\x82"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, rng.IntN(20))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		out := AppendJSONString([]byte("prefix:"), []byte(s))
		js, ok := strings.CutPrefix(string(out), "prefix:")
		var got string
		if !ok || json.Unmarshal([]byte(js), &got) != nil {
			t.Fatalf("%q: %q is not a JSON string", s, out)
		}
		if want := eachInvalid(s); got != want {
			t.Errorf("%q: decodes to %q, want %q", s, got, want)
		}
	}
}

// eachInvalid is s with each byte that is not UTF-8 as U+FFFD.
func eachInvalid(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // an invalid byte comes as utf8.RuneError
	}
	return b.String()
}
