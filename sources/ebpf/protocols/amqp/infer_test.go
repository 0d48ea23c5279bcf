package amqp_test

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/all"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/amqp"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// firstBytes are what each side of an AMQP connection sends first, from
// the amqp091-go session in testdata, and the first frames a connection
// seen from its middle can start with.
func firstBytes(t *testing.T) map[string][]byte {
	var client, server []byte
	for _, c := range dbtest.Replay(t, "testdata/amqp091_go.bin") {
		if c.ToServer && client == nil {
			client = c.Data
		}
		if !c.ToServer && server == nil {
			server = c.Data
		}
	}
	return map[string][]byte{
		"amqp-header": client,
		"amqp-start":  server[:min(len(server), 512)], // as much as inference sees
		// basic.publish of amqp091-go, its header and body frames
		"amqp-publish": []byte("\x01\x00\x02\x00\x00\x00\x1d\x00\x3c\x00\x28\x00\x00\x06orders\x0eorders.created\x00\xce" +
			"\x02\x00\x02\x00\x00\x00\x0e\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\xce\x03\x00\x02\x00\x00\x00\x03one\xce"),
		// basic.deliver from the broker
		"amqp-deliver": []byte("\x01\x00\x01\x00\x00\x00\x30\x00\x3c\x00\x3c\x0cpxq-consumer\x00\x00\x00\x00\x00\x00\x00\x01\x00\x06orders\x0eorders.created\xce"),
	}
}

// TestInfer checks the rule on its own first bytes, and on every other
// protocol's (dbtest.FirstBytes), whole or cut anywhere; and that no
// other protocol's rule takes AMQP's.
func TestInfer(t *testing.T) {
	for name, b := range firstBytes(t) {
		match, request := amqp.Protocol{}.Infer(b, true)
		wantReq := name == "amqp-header" || name == "amqp-publish"
		if !match || request != wantReq {
			t.Errorf("%s: match %v request %v", name, match, request)
		}
		if m, _ := (amqp.Protocol{}).Infer(b, false); m {
			t.Errorf("%s: matched a datagram", name)
		}
		for _, p := range all.Protocols() {
			if p.Name() == "amqp" {
				continue
			}
			if m, _ := p.Infer(b, true); m {
				t.Errorf("%s's rule takes %s", p.Name(), name)
			}
		}
	}
	for name, b := range dbtest.FirstBytes {
		for i := 0; i <= len(b); i++ {
			if m, _ := (amqp.Protocol{}).Infer(b[:i], true); m {
				t.Errorf("%s cut at %d: matched", name, i)
			}
		}
	}
	for name, s := range map[string]string{
		"other version":     "AMQP\x00\x00\x09\x00",
		"cut header":        "AMQP\x00\x00",
		"heartbeat":         "\x08\x00\x00\x00\x00\x00\x00\xce",
		"content header":    "\x02\x00\x02\x00\x00\x00\x0e\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\xce",
		"wrong end":         "\x01\x00\x01\x00\x00\x00\x05\x00\x3c\x00\x50\x01\x00",
		"unknown method":    "\x01\x00\x01\x00\x00\x00\x04\x00\x3c\x00\x09\xce",
		"either side sends": "\x01\x00\x01\x00\x00\x00\x04\x00\x14\x00\x29\xce", // channel.close-ok
		"cut frame":         "\x01\x00\x01\x00\x00\x00\x2b\x00\x3c\x00\x3c\x0cpxq",
	} {
		if m, _ := (amqp.Protocol{}).Infer([]byte(s), true); m {
			t.Errorf("%s: matched", name)
		}
	}
}
