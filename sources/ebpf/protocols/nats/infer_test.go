package nats_test

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/all"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/nats"
)

// firstBytes are what each side of a NATS connection sends first, from
// the nats.go sessions in testdata, and lines a connection seen from its
// middle starts with.
func firstBytes(t *testing.T) map[string][]byte {
	chunks := dbtest.Replay(t, "testdata/nats_go.bin")
	var client, server []byte
	for _, c := range chunks {
		if c.ToServer && client == nil {
			client = c.Data
		}
		if !c.ToServer && server == nil {
			server = c.Data
		}
	}
	return map[string][]byte{
		"nats-info":    server,
		"nats-connect": client,
		"nats-pub":     []byte("PUB orders.created 7\r\norder-1\r\n"),
		"nats-hpub":    []byte("HPUB jobs.build 34 43\r\nNATS/1.0\r\nTrace-Id: abc\r\n\r\n{\"job\":7}\r\n"),
		"nats-sub":     []byte("SUB jobs.* workers 2\r\n"),
		"nats-msg":     []byte("MSG svc.echo 3 reply.1 4\r\nping\r\n"),
		"nats-hmsg":    []byte("HMSG _INBOX.x.y 5 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"),
	}
}

// TestInfer checks the rule on its own first bytes, whole, and on every
// other protocol's (dbtest.FirstBytes), whole or cut anywhere; and that
// no other protocol's rule takes NATS's.
func TestInfer(t *testing.T) {
	mine := firstBytes(t)
	for name, b := range mine {
		match, request := nats.Protocol{}.Infer(b, true)
		wantReq := name == "nats-connect" || name == "nats-pub" || name == "nats-hpub" || name == "nats-sub"
		if !match || request != wantReq {
			t.Errorf("%s: match %v request %v", name, match, request)
		}
		if m, _ := (nats.Protocol{}).Infer(b, false); m {
			t.Errorf("%s: matched a datagram", name)
		}
		for _, p := range all.Protocols() {
			if p.Name() == "nats" {
				continue
			}
			// HTTP's rule takes any line that starts with its CONNECT
			// method. That costs nothing on a new connection, whose first
			// bytes are the server's INFO, which HTTP's rule does not take.
			if m, _ := p.Infer(b, true); m && !(p.Name() == "http" && name == "nats-connect") {
				t.Errorf("%s's rule takes %s", p.Name(), name)
			}
		}
	}
	for name, b := range dbtest.FirstBytes {
		for i := 0; i <= len(b); i++ {
			if m, _ := (nats.Protocol{}).Infer(b[:i], true); m {
				t.Errorf("%s cut at %d: matched", name, i)
			}
		}
	}
	for _, s := range []string{
		"INFO\r\n",                 // no options
		"INFO{}\r\n",               // no separator
		"info {}\r\n",              // lower case
		"PUB foo\r\n",              // no size
		"PUB foo x\r\n",            // not a size
		"PUB foo 3\r\nabcd\r\n",    // the payload is not 3 bytes
		"PUB fo\x01o 3\r\nabc\r\n", // a control character in the subject
		"HPUB foo 9 3\r\n",         // headers larger than the whole
		"SUB foo\r\n",              // no sid
		"MSG foo 1\r\n",            // no size
		"PING\r\n",                 // too short to tell
		"+OK\r\n",
		"PUB foo 3", // no line end yet
		"PUT /x HTTP/1.1\r\n\r\n",
	} {
		if m, _ := (nats.Protocol{}).Infer([]byte(s), true); m {
			t.Errorf("%q matched", s)
		}
	}
	if !strings.HasPrefix(string(mine["nats-info"]), "INFO {") {
		t.Errorf("the recorded session starts with %.20q", mine["nats-info"])
	}
}
