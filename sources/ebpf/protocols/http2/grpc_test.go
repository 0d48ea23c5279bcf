package http2

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// msg builds a protobuf message from (number, value) pairs: uint64 as a
// varint, uint32 as fixed32, int64 as fixed64 (its bits), string and
// []byte as length-delimited.
func msg(fields ...any) string {
	var b []byte
	for i := 0; i < len(fields); i += 2 {
		num := protowire.Number(fields[i].(int))
		switch v := fields[i+1].(type) {
		case uint64:
			b = protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
		case uint32:
			b = protowire.AppendFixed32(protowire.AppendTag(b, num, protowire.Fixed32Type), v)
		case int64:
			b = protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), uint64(v))
		case string:
			b = protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), []byte(v))
		case []byte:
			b = protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
		}
	}
	return string(b)
}

func TestGRPCBodyText(t *testing.T) {
	group := string(protowire.AppendTag(nil, 4, protowire.StartGroupType)) + msg(1, uint64(7)) +
		string(protowire.AppendTag(nil, 4, protowire.EndGroupType))
	for _, tc := range []struct{ name, body, want string }{
		{"scalars", grpcMsg(msg(1, uint64(150), 2, uint32(1), 3, int64(-1))), "1: 150\n2: 0x00000001\n3: 0xffffffffffffffff"},
		{"negative int32 as a varint", grpcMsg(msg(1, uint64(1<<64-1))), "1: 18446744073709551615"},
		{"text", grpcMsg(msg(1, "héllo \"w\"\n")), `1: "héllo \"w\"\n"`},
		{"bytes", grpcMsg(msg(1, []byte{0xff, 0, 'a', 0x7f})), `1: "\377\000a\177"`},
		{"nested", grpcMsg(msg(1, msg(1, "x", 2, msg(3, uint64(4))), 5, uint64(6))), "1 {\n  1: \"x\"\n  2 {\n    3: 4\n  }\n}\n5: 6"},
		{"group", grpcMsg(group), "4 {\n  1: 7\n}"},
		{"empty field and message", grpcMsg(msg(1, "")) + grpcMsg(""), `1: ""`},
		{"messages follow each other", grpcMsg(msg(1, uint64(1))) + grpcMsg(msg(1, uint64(2))), "1: 1\n1: 2"},
		{"compressed", "\x01\x00\x00\x00\x03abc" + grpcMsg(msg(1, uint64(1))), "<compressed message>\n1: 1"},
		{"not protobuf", grpcMsg("\xff\xff\xff"), "<failed to parse protobuf>"},
		{"cut in a field", grpcMsg(msg(1, uint64(1), 2, "long string"))[:12], "1: 1\n<truncated>"},
		{"cut in the prefix", grpcMsg(msg(1, uint64(1))) + "\x00\x00", "1: 1\n<truncated>"},
		{"end group alone", grpcMsg(string(protowire.AppendTag(nil, 4, protowire.EndGroupType))), "<failed to parse protobuf>"},
	} {
		if got := string(appendGRPCBody(nil, []byte(tc.body))); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	if got := string(cutText([]byte("aébcdefg"), 5)); got != "a..." { // not inside é
		t.Errorf("cutText: %q", got)
	}
	if got := string(cutText([]byte("abcé"), 5)); got != "abcé" {
		t.Errorf("cutText of a short text: %q", got)
	}
}

// TestFraming: message lengths are summed across DATA pieces; bytes lost
// inside a message keep the count, lost over a prefix the count goes on
// with the bytes.
func TestFraming(t *testing.T) {
	var g framing
	b := []byte(grpcMsg("12345") + grpcMsg("abc"))
	for i := range b {
		g.data(b[i : i+1])
	}
	if g.size != 8 || g.msgs != 2 || g.broken {
		t.Errorf("%+v", g)
	}
	g = framing{}
	g.data(b[:7])
	g.lost(3) // the rest of the first message
	g.data(b[10:])
	if g.size != 8 || g.msgs != 2 || g.broken {
		t.Errorf("lost inside a message: %+v", g)
	}
	g = framing{}
	g.data(b[:7])
	g.lost(6) // into the second prefix
	g.data(b[13:])
	// The first message's length, then the bytes lost past it and the
	// bytes seen, prefix bytes included.
	if !g.broken || g.size != 5+3+5 {
		t.Errorf("lost over a prefix: %+v", g)
	}
}
