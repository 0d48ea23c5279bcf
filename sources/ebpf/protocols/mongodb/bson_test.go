package mongodb

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

// TestDecimal128 checks decimal128 values against the strings of the
// BSON decimal128 specification's examples (the driver's encoder checks
// more in realclient).
func TestDecimal128(t *testing.T) {
	for _, c := range []struct {
		hi, lo uint64
		want   string
	}{
		{0x3040000000000000, 0, "0"},
		{0x3040000000000000, 1, "1"},
		{0xb040000000000000, 1, "-1"},
		{0x303e000000000000, 1, "0.1"},
		{0x3034000000000000, 0x1cf, "0.000463"},
		{0x3042000000000000, 1, "1E+1"},
		{0x2ff0000000000000, 1, "1E-40"},
		{0x3040000000000000, 0x3039, "12345"},
		{0x3032000000000000, 0x3039, "0.0012345"},
		{0x302c000000000000, 0x3039, "0.0000012345"},
		{0x302a000000000000, 0x3039, "1.2345E-7"},
		{0x5fffed09bead87c0, 0x378d8e63ffffffff, "9.999999999999999999999999999999999E+6144"},
		{0x0000000000000000, 1, "1E-6176"},
		{0x7c00000000000000, 0, "NaN"},
		{0xfc00000000000000, 0, "NaN"},
		{0x7800000000000000, 0, "Infinity"},
		{0xf800000000000000, 0, "-Infinity"},
		// The form whose coefficient has implicit high bits (past 10^34-1):
		// 0, its exponent 6176-6176 read from bit 47.
		{0x6c10000000000000, 0, "0"},
	} {
		if got := string(appendDecimal128(nil, c.hi, c.lo)); got != c.want {
			t.Errorf("%#x %#x: %s, want %s", c.hi, c.lo, got, c.want)
		}
	}
}

// TestBudget checks that a document decoded within any budget is JSON
// no longer than the budget, marked when cut, and whole when the budget
// has room for it; with values whose escapes make them longer than
// their bytes.
func TestBudget(t *testing.T) {
	dec := make([]byte, 16)
	binary.LittleEndian.PutUint64(dec[8:], 0x3040000000000000)
	doc := d{
		{"s", strings.Repeat("\x01\"é", 20)}, {"k\x02\x03", 1},
		{"re", raw{tRegex, []byte(strings.Repeat("\x05", 30) + "\x00i\x00")}},
		{"code", raw{tJavaScript, append(binary.LittleEndian.AppendUint32(nil, 31), strings.Repeat("\x06", 30)+"\x00"...)}},
		{"scope", raw{tCodeScope, codeScope(strings.Repeat("\x07", 20), d{{"x", "\x08\x08"}})}},
		{"dbp", raw{tDBPointer, append(append(binary.LittleEndian.AppendUint32(nil, 12), "\x09\x09pxq.items\x00"...), make([]byte, 12)...)}},
		{"dec", raw{tDecimal, dec}}, {"nested", d{{"a", arr{1, "two", d{{"b", nil}}}}}},
	}.bson()
	whole, ok := AppendJSON(nil, doc, 1<<20)
	if !ok || !json.Valid(whole) {
		t.Fatalf("whole: ok %v, %s", ok, whole)
	}
	for max := 19; max <= len(whole)+20; max++ {
		got, ok := AppendJSON(nil, doc, max)
		if len(got) > max || !json.Valid(got) {
			t.Fatalf("budget %d: %d bytes: %s", max, len(got), got)
		}
		// The writer keeps room for the mark and the closing brackets (at
		// most 5 deep here), so a text that fits with them is whole.
		if ok != (string(got) == string(whole)) || (!ok && len(whole)+len(truncMark)+1+5 <= max) {
			t.Fatalf("budget %d: ok %v: %s", max, ok, got)
		}
		if !ok && !strings.HasSuffix(string(got), `"$truncated":true}`) {
			t.Fatalf("budget %d: not marked: %s", max, got)
		}
	}
}

// codeScope is a code-with-scope value.
func codeScope(code string, scope d) []byte {
	s := binary.LittleEndian.AppendUint32(nil, uint32(len(code)+1))
	s = append(append(s, code...), 0)
	s = append(s, scope.bson()...)
	return append(binary.LittleEndian.AppendUint32(nil, uint32(4+len(s))), s...)
}
