package mongodb_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/all"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mongodb"
)

// firstBytes are messages of the driver's session with FerretDB in
// testdata, each as the first bytes of a side (up to 512, as inference
// sees them): the handshake (OP_QUERY, OP_REPLY) a new connection begins
// with, and the OP_MSG commands and replies a connection seen from its
// middle does. request says which are a client's.
func firstBytes(t *testing.T) (samples map[string][]byte, request map[string]bool) {
	samples, request = map[string][]byte{}, map[string]bool{}
	var client, server int
	for _, c := range dbtest.Replay(t, "testdata/session.bin") {
		b := c.Data
		for len(b) >= 16 {
			n := int(binary.LittleEndian.Uint32(b))
			op := binary.LittleEndian.Uint32(b[12:])
			name := fmt.Sprintf("server-%d-op%d", server, op)
			if c.ToServer {
				name = fmt.Sprintf("client-%d-op%d", client, op)
				client++
			} else {
				server++
			}
			samples[name], request[name] = b[:min(len(b), 512)], c.ToServer
			b = b[min(n, len(b)):]
		}
	}
	return samples, request
}

// TestInfer checks the rule on every message of the recorded session,
// whole (cut, none before its first document's first key), and on
// every other protocol's first bytes (dbtest.FirstBytes), whole or cut
// anywhere; that no other protocol's rule takes MongoDB's, cut anywhere;
// and that bytes that break a header's or a document's rules are not
// taken.
func TestInfer(t *testing.T) {
	samples, request := firstBytes(t)
	if len(samples) < 20 {
		t.Fatalf("%d messages in the recording", len(samples))
	}
	for name, b := range samples {
		match, req := mongodb.Protocol{}.Infer(b, true)
		if !match || req != request[name] {
			t.Errorf("%s: match %v request %v", name, match, req)
		}
		if m, _ := (mongodb.Protocol{}).Infer(b, false); m {
			t.Errorf("%s: matched a datagram", name)
		}
		for i := range min(len(b), 26) {
			if m, _ := (mongodb.Protocol{}).Infer(b[:i], true); m {
				t.Errorf("%s cut at %d: matched", name, i)
			}
		}
		for _, p := range all.Protocols() {
			if p.Name() == "mongodb" {
				continue
			}
			for i := 1; i <= len(b); i++ {
				if m, _ := p.Infer(b[:i], true); m {
					t.Errorf("%s's rule takes %s cut at %d", p.Name(), name, i)
					break
				}
			}
		}
	}
	// The handshake and a find of FirstBytes are taken, no other
	// protocol's sample, whole or cut.
	dbtest.Inference{Protocol: mongodb.Protocol{}, Prefix: "mongodb-", Request: true}.Check(t)
	// OP_QUERY: header, flags (16), "admin.$cmd" (20), skip and return
	// counts (31), the document (39) and its first type (43).
	hello := samples["client-0-op2004"]
	if string(hello[20:31]) != "admin.$cmd\x00" {
		t.Fatalf("the handshake is %q", hello[:48])
	}
	for _, c := range []struct {
		name string
		edit func(b []byte)
	}{
		{"a length past the largest message", func(b []byte) { binary.LittleEndian.PutUint32(b, 48_000_001) }},
		{"a length shorter than a header", func(b []byte) { binary.LittleEndian.PutUint32(b, 15) }},
		{"an unknown opcode", func(b []byte) { binary.LittleEndian.PutUint32(b[12:], 2014) }},
		{"a request that answers one", func(b []byte) { binary.LittleEndian.PutUint32(b[8:], 9) }},
		{"a collection name without a dot", func(b []byte) { copy(b[20:], "admin_") }},
		{"a control character in the collection", func(b []byte) { b[21] = 1 }},
		{"a document longer than the message", func(b []byte) { binary.LittleEndian.PutUint32(b[39:], 1<<20) }},
		{"an unknown element type", func(b []byte) { b[43] = 0x20 }},
	} {
		b := append([]byte(nil), hello...)
		c.edit(b)
		if m, _ := (mongodb.Protocol{}).Infer(b, true); m {
			t.Errorf("%s: matched", c.name)
		}
	}
	msg := samples["client-1-op2013"]
	for _, c := range []struct {
		name string
		edit func(b []byte)
	}{
		{"an undefined flag bit", func(b []byte) { b[16] |= 4 }},
		{"a document sequence first", func(b []byte) { b[20] = 1 }},
		{"an unknown section kind", func(b []byte) { b[20] = 2 }},
	} {
		b := append([]byte(nil), msg...)
		c.edit(b)
		if m, _ := (mongodb.Protocol{}).Infer(b, true); m {
			t.Errorf("%s: matched", c.name)
		}
	}
}
