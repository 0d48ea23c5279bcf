package http2

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// gRPC sends each message after a 5-byte prefix: a compressed flag and
// the message's length (big-endian).
const grpcPrefixLen = 5

// framing follows the length-prefixed messages of one direction of a
// gRPC stream across DATA frames, to count the messages and the sum of
// their lengths (the body size of a gRPC row).
type framing struct {
	hdr  [grpcPrefixLen]byte
	nhdr int
	left int64 // bytes of the current message still to come
	size int64 // sum of the lengths of the messages begun
	msgs int64
	// broken is set when lost bytes hid a prefix: from there size
	// counts the bytes of the stream instead.
	broken bool
}

func (g *framing) data(p []byte) {
	if g.broken {
		g.size += int64(len(p))
		return
	}
	for len(p) > 0 {
		if g.left > 0 {
			n := min(int64(len(p)), g.left)
			g.left -= n
			p = p[n:]
			continue
		}
		n := copy(g.hdr[g.nhdr:], p)
		g.nhdr += n
		p = p[n:]
		if g.nhdr == grpcPrefixLen {
			g.nhdr = 0
			g.left = int64(binary.BigEndian.Uint32(g.hdr[1:]))
			g.size += g.left
			g.msgs++
		}
	}
}

// lost skips n bytes that were not captured.
func (g *framing) lost(n int) {
	if !g.broken && g.nhdr == 0 && int64(n) <= g.left {
		g.left -= int64(n)
		return
	}
	if !g.broken {
		// The current message's length was counted whole.
		g.broken = true
		n = max(n-int(g.left), 0)
		g.left, g.nhdr = 0, 0
	}
	g.size += int64(n)
}

// Rendering of gRPC bodies. As Pixie does, each message is shown in the
// protobuf text format decoded without its schema: fields by number,
// varints in decimal, fixed32 and fixed64 in hex, length-delimited fields
// as a nested message when they parse as one, else as a string. pxq takes
// a length-delimited field that is printable UTF-8 text for a string
// before trying it as a message (Pixie tries the message first, so some
// words print as nested fields); messages follow each other line by line.

const maxNesting = 16

// appendGRPCBody appends the text of the gRPC messages in body (a prefix
// of a stream's DATA, so the last message may be cut) to b. Compressed
// messages are shown as "<compressed message>", and a message cut short
// by the body's bound shows the fields it holds whole, then
// "<truncated>".
func appendGRPCBody(b, body []byte) []byte {
	start := len(b)
	for len(body) > 0 {
		if len(body) < grpcPrefixLen {
			return appendLine(b, start, 0, "<truncated>")
		}
		compressed := body[0] == 1
		length := binary.BigEndian.Uint32(body[1:])
		n := int(min(length, uint32(len(body)-grpcPrefixLen)))
		msg, cut := body[grpcPrefixLen:grpcPrefixLen+n], n < int(length)
		body = body[grpcPrefixLen+n:]
		if compressed {
			b = appendLine(b, start, 0, "<compressed message>")
			continue
		}
		var ok bool
		if b, ok = appendFields(b, start, msg, 0); !ok {
			if cut {
				b = appendLine(b, start, 0, "<truncated>")
			} else {
				b = appendLine(b, start, 0, "<failed to parse protobuf>")
			}
		}
	}
	return b
}

// appendLine appends a line of text at depth, after a newline unless it
// is the first line since start.
func appendLine(b []byte, start, depth int, s string) []byte {
	b = newline(b, start, depth)
	return append(b, s...)
}

func newline(b []byte, start, depth int) []byte {
	if len(b) > start {
		b = append(b, '\n')
	}
	for i := 0; i < depth; i++ {
		b = append(b, ' ', ' ')
	}
	return b
}

// appendFields appends the fields of the message m, one line each, at
// depth. It stops at the first field that does not parse and reports
// whether every field did.
func appendFields(b []byte, start int, m []byte, depth int) ([]byte, bool) {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return b, false
		}
		m = m[n:]
		if typ == protowire.StartGroupType && depth >= maxNesting {
			return b, false
		}
		n = protowire.ConsumeFieldValue(num, typ, m)
		if n < 0 || typ == protowire.EndGroupType {
			return b, false
		}
		val := m[:n]
		m = m[n:]
		b = newline(b, start, depth)
		b = strconv.AppendInt(b, int64(num), 10)
		switch typ {
		case protowire.VarintType:
			v, _ := protowire.ConsumeVarint(val)
			b = strconv.AppendUint(append(b, ": "...), v, 10)
		case protowire.Fixed32Type:
			v, _ := protowire.ConsumeFixed32(val)
			b = appendHex(append(b, ": 0x"...), uint64(v), 8)
		case protowire.Fixed64Type:
			v, _ := protowire.ConsumeFixed64(val)
			b = appendHex(append(b, ": 0x"...), v, 16)
		case protowire.BytesType:
			v, _ := protowire.ConsumeBytes(val)
			if len(v) > 0 && depth < maxNesting && !isText(v) && isMessage(v, depth+1) {
				b = append(b, " {"...)
				b, _ = appendFields(b, start, v, depth+1)
				b = appendLine(b, start, depth, "}")
			} else {
				b = appendQuoted(append(b, ": "...), v)
			}
		case protowire.StartGroupType:
			v, _ := protowire.ConsumeGroup(num, val)
			b = append(b, " {"...)
			b, _ = appendFields(b, start, v, depth+1)
			b = appendLine(b, start, depth, "}")
		}
	}
	return b, true
}

// isMessage reports whether m parses whole as a protobuf message.
func isMessage(m []byte, depth int) bool {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 || typ == protowire.EndGroupType {
			return false
		}
		m = m[n:]
		if typ == protowire.StartGroupType && depth >= maxNesting {
			return false
		}
		if n = protowire.ConsumeFieldValue(num, typ, m); n < 0 {
			return false
		}
		m = m[n:]
	}
	return true
}

// isText reports whether v is valid UTF-8 of printable characters (tabs
// and line breaks allowed).
func isText(v []byte) bool {
	for len(v) > 0 {
		r, n := utf8.DecodeRune(v)
		if r == utf8.RuneError && n <= 1 || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
		v = v[n:]
	}
	return true
}

func appendHex(b []byte, v uint64, digits int) []byte {
	const hex = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// appendQuoted appends v as a text-format string: quotes, backslashes
// and control characters escaped, bytes that are not UTF-8 in octal.
func appendQuoted(b, v []byte) []byte {
	b = append(b, '"')
	for len(v) > 0 {
		r, size := utf8.DecodeRune(v)
		switch {
		case r == utf8.RuneError && size <= 1:
			b = append(b, '\\', '0'+v[0]>>6, '0'+(v[0]>>3)&7, '0'+v[0]&7)
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20 || r == 0x7f:
			b = append(b, '\\', '0'+byte(r)>>6, '0'+(byte(r)>>3)&7, '0'+byte(r)&7)
		default:
			b = append(b, v[:size]...)
		}
		v = v[size:]
	}
	return append(b, '"')
}

// cutText cuts the text t to at most max bytes, at a character boundary,
// marking the cut.
func cutText(t []byte, max int) []byte {
	const mark = "..."
	if len(t) <= max || max <= len(mark) {
		return t
	}
	n := max - len(mark)
	for n > 0 && !utf8.RuneStart(t[n]) {
		n--
	}
	return append(t[:n], mark...)
}
