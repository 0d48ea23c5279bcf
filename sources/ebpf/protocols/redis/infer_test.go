package redis

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// TestInfer checks the rule on every protocol's first bytes: it takes a
// Redis command and nothing else, whole or cut anywhere.
func TestInfer(t *testing.T) {
	for name, b := range dbtest.FirstBytes {
		mine := strings.HasPrefix(name, "redis-")
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
	for _, s := range []string{
		"*1\r\n$4\r\nP1NG\r\n",      // not a name
		"*0\r\n",                    // no command
		"*1\r\n:4\r\n",              // not a bulk string
		"*1\r\n$40\r\nPING\r\n",     // length beyond the data
		"*x\r\n$4\r\nPING\r\n",      // not a count
		"PING\r\n",                  // inline: too loose to infer
		"*2\r\n$4\r\nPI\nG\r\n$1\r", // a newline in the name
	} {
		if m, _ := (Protocol{}).Infer([]byte(s), true); m {
			t.Errorf("%q matched", s)
		}
	}
}
