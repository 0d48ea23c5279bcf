package pgsql

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// TestInfer checks the rule on every protocol's first bytes: it takes
// PostgreSQL's and nothing else, whole or cut anywhere.
func TestInfer(t *testing.T) {
	for name, b := range dbtest.FirstBytes {
		mine := strings.HasPrefix(name, "pgsql-")
		match, request := Protocol{}.Infer(b, true)
		if match != mine || (mine && !request) {
			t.Errorf("%s: match %v request %v", name, match, request)
		}
		if m, _ := (Protocol{}).Infer(b, false); m {
			t.Errorf("%s: matched a datagram", name)
		}
		for i := range b {
			if m, _ := (Protocol{}).Infer(b[:i], true); m && !mine {
				t.Errorf("%s cut at %d: matched", name, i)
			}
		}
	}
	// A query followed by another message in the same write.
	if m, _ := (Protocol{}).Infer(append(msg('Q', "select 1"), msg('X')...), true); !m {
		t.Error("query then terminate not matched")
	}
	for _, b := range [][]byte{
		msg('Q', "\x01\x02binary"),
		msg('Q', ""),
		append(msg('Q', "select 1"), 'z'),
		[]byte("\x00\x00\x00\x10\x00\x03\x00\x00nouser\x00x\x00\x00"),
	} {
		if m, _ := (Protocol{}).Infer(b, true); m {
			t.Errorf("%q matched", b)
		}
	}
}
