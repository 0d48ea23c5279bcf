// Package wire has the byte-level helpers that the protocols' decoders
// share: splitting fields off the front of a payload, and appending text
// within a bound or as a JSON string.
package wire

import (
	"bytes"
	"unicode/utf8"
)

// Take splits n bytes off the front of b and returns them and the rest.
// When b is shorter, or n negative, it returns all of b, no rest and
// false.
func Take(b []byte, n int) (head, rest []byte, ok bool) {
	if n < 0 || n > len(b) {
		return b, nil, false
	}
	return b[:n], b[n:], true
}

// CString splits a NUL-terminated string off the front of b and returns
// it (without its NUL) and the rest. When b holds no NUL it returns all
// of b, no rest and false.
func CString(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

// AppendCapped appends the parts of s to b, b growing to at most limit
// bytes: the part that does not fit is cut, and the parts after it
// dropped.
func AppendCapped[S ~string | ~[]byte](b []byte, limit int, s ...S) []byte {
	for _, p := range s {
		if room := limit - len(b); room < len(p) {
			return append(b, p[:max(room, 0)]...)
		}
		b = append(b, p...)
	}
	return b
}

// AppendJSONString appends s as a JSON string (control characters
// escaped, invalid UTF-8 as U+FFFD).
func AppendJSONString(b []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
