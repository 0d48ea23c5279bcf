package pgsql

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// TestInfer checks the rule on every protocol's first bytes: it takes
// PostgreSQL's and nothing else, whole or cut anywhere.
func TestInfer(t *testing.T) {
	dbtest.Inference{
		Protocol: Protocol{}, Prefix: "pgsql-", Request: true,
		// A query followed by another message in the same write.
		Match: [][]byte{append(msg('Q', "select 1"), msg('X')...)},
		NoMatch: [][]byte{
			msg('Q', "\x01\x02binary"),
			msg('Q', ""),
			append(msg('Q', "select 1"), 'z'),
			[]byte("\x00\x00\x00\x10\x00\x03\x00\x00nouser\x00x\x00\x00"),
		},
	}.Check(t)
}
