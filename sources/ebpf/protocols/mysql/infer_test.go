package mysql

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// TestInfer checks the rule on every protocol's first bytes: it takes
// the MySQL server's handshake and nothing else, whole or cut anywhere.
func TestInfer(t *testing.T) {
	for name, b := range dbtest.FirstBytes {
		mine := strings.HasPrefix(name, "mysql-")
		match, request := Protocol{}.Infer(b, true)
		if match != mine || request {
			t.Errorf("%s: match %v request %v", name, match, request)
		}
		if m, _ := (Protocol{}).Infer(b, false); m {
			t.Errorf("%s: matched a datagram", name)
		}
		for i := range b {
			if m, _ := (Protocol{}).Infer(b[:i], true); m {
				t.Errorf("%s cut at %d: matched", name, i)
			}
		}
	}
	if m, _ := (Protocol{}).Infer(greeting(capProtocol41), true); !m {
		t.Error("a MySQL 8 handshake not matched")
	}
	for _, b := range [][]byte{
		pkt(1, greeting(0)[4:]),                        // not sequence 0
		pkt(0, s("\x09"), greeting(0)[5:]),             // protocol 9
		pkt(0, s("\x0aversion\x00"), make([]byte, 20)), // not a number
		pkt(0, s("\x0a8.0\x01\x00"), make([]byte, 20)), // not printable
	} {
		if m, _ := (Protocol{}).Infer(b, true); m {
			t.Errorf("%q matched", b)
		}
	}
}
