package redis

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// TestInfer checks the rule on every protocol's first bytes: it takes a
// Redis command and nothing else, whole or cut anywhere.
func TestInfer(t *testing.T) {
	dbtest.Inference{
		Protocol: Protocol{}, Prefix: "redis-", Request: true,
		NoMatch: [][]byte{
			[]byte("*1\r\n$4\r\nP1NG\r\n"),      // not a name
			[]byte("*0\r\n"),                    // no command
			[]byte("*1\r\n:4\r\n"),              // not a bulk string
			[]byte("*1\r\n$40\r\nPING\r\n"),     // length beyond the data
			[]byte("*x\r\n$4\r\nPING\r\n"),      // not a count
			[]byte("PING\r\n"),                  // inline: too loose to infer
			[]byte("*2\r\n$4\r\nPI\nG\r\n$1\r"), // a newline in the name
		},
	}.Check(t)
}
