package cql

import (
	"fmt"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/amqp"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/dns"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http2"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/kafka"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mysql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/nats"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/pgsql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/redis"
)

// firstMessages are the first message of each side of the recorded gocql
// connections, and the other messages the client and the responder
// exchanged: what a connection seen mid-stream starts with.
func firstMessages(t *testing.T) (requests, responses map[string][]byte) {
	requests, responses = map[string][]byte{}, map[string][]byte{}
	for _, name := range []string{"gocql-v3-control", "gocql-v3-queries", "gocql-v4-control", "gocql-v4-queries"} {
		for i, c := range dbtest.Replay(t, "testdata/"+name+".bin") {
			m := responses
			if c.ToServer {
				m = requests
			}
			m[fmt.Sprintf("%s/%d", name, i)] = c.Data[:min(len(c.Data), inferBytes)]
		}
	}
	return requests, responses
}

// TestInfer checks the rule on every protocol's first bytes (gocql's
// OPTIONS and STARTUP match, nothing else does, whole or cut), on every
// message of the recorded sessions (requests match as requests,
// responses as responses), and the other protocols' rules on them.
func TestInfer(t *testing.T) {
	dbtest.Inference{
		Protocol: Protocol{}, Prefix: "cql-", Request: true, Whole: true,
		NoMatch: [][]byte{
			[]byte("\x02\x00\x00\x01\x05\x00\x00\x00\x00"),                                 // v2
			[]byte("\x04\x00\x00\x01\x05\x00\x00\x00\x01x"),                                // OPTIONS with a body
			[]byte("\x04\x00\x00\x01\x06\x00\x00\x00\x00"),                                 // a response opcode in a request
			[]byte("\x84\x00\x00\x01\x05\x00\x00\x00\x00"),                                 // a request opcode in a response
			[]byte("\x04\x80\x00\x01\x05\x00\x00\x00\x00"),                                 // unknown flags
			[]byte("\x04\x00\xff\xfe\x05\x00\x00\x00\x00"),                                 // a negative stream in a request
			[]byte("\x04\x00\x00\x01\x01\x00\x00\x00\x06\x00\x01\x00\x01k\x00"),            // STARTUP without CQL_VERSION, cut
			[]byte("\x04\x01\x00\x01\x07\x00\x00\x00\x04\x00\x00\x00\x00"),                 // compressed
			[]byte("\x04\x00\x00\x01\x07\x00\x00\x00\x08\x00\x00\x00\x02\x01\x02\x00\x01"), // a query that is not text
		},
	}.Check(t)
	requests, responses := firstMessages(t)
	others := []protocols.Protocol{http.Protocol{}, http2.Protocol{}, dns.Protocol{}, pgsql.Protocol{}, mysql.Protocol{},
		redis.Protocol{}, nats.Protocol{}, amqp.Protocol{}, kafka.Protocol{}}
	for side, m := range []map[string][]byte{requests, responses} {
		for name, b := range m {
			if match, request := (Protocol{}).Infer(b, true); !match || request != (side == 0) {
				t.Errorf("%s: match %v request %v (%q)", name, match, request, b[:min(len(b), 40)])
			}
			for _, p := range others {
				for i := 1; i <= len(b); i++ {
					if ok, _ := p.Infer(b[:i], true); ok {
						t.Errorf("%s: %s's rule matched it cut at %d", name, p.Name(), i)
						break
					}
				}
			}
		}
	}
}
