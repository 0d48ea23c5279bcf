package mysql

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// TestInfer checks the rule on every protocol's first bytes: it takes
// the MySQL server's handshake and nothing else, and only whole.
func TestInfer(t *testing.T) {
	dbtest.Inference{
		Protocol: Protocol{}, Prefix: "mysql-", Whole: true,
		Match: [][]byte{greeting(capProtocol41)}, // MySQL 8's
		NoMatch: [][]byte{
			pkt(1, greeting(0)[4:]),                        // not sequence 0
			pkt(0, s("\x09"), greeting(0)[5:]),             // protocol 9
			pkt(0, s("\x0aversion\x00"), make([]byte, 20)), // not a number
			pkt(0, s("\x0a8.0\x01\x00"), make([]byte, 20)), // not printable
		},
	}.Check(t)
}
