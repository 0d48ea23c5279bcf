package kafka

import (
	"fmt"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/dns"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mysql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/pgsql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/redis"
)

// firstBytes are the first bytes each side of the recorded connections
// sent (up to 512, as inference sees them): the client's requests and
// the broker's responses.
func firstBytes(t *testing.T) (requests, responses map[string][]byte) {
	requests, responses = map[string][]byte{}, map[string][]byte{}
	for _, file := range recordings(t) {
		// The tracer gathers the first segments of a direction, up to
		// 512 bytes, until a rule matches: those of the first message,
		// until the other side answers.
		done := map[int]*[2]bool{}
		for _, c := range readRecording(t, file) {
			if done[c.conn] == nil {
				done[c.conn] = &[2]bool{}
			}
			dir, m := 0, requests
			if !c.toServer {
				dir, m = 1, responses
			}
			name := fmt.Sprintf("%s/%d", file, c.conn)
			if _, started := m[name]; started || !done[c.conn][dir] {
				other := map[int][]byte{0: responses[name], 1: requests[name]}[dir]
				if other != nil && len(m[name]) > 0 {
					done[c.conn][dir] = true
				}
			}
			if done[c.conn][dir] {
				continue
			}
			m[name] = append(m[name], c.data...)
			if len(m[name]) >= 512 {
				m[name] = m[name][:512]
				done[c.conn][dir] = true
			}
		}
	}
	return requests, responses
}

// TestInfer checks the rule: it takes the first request of every
// recorded connection, and not the broker's responses, nor any other
// protocol's first bytes, whole or cut anywhere; and the other
// protocols' rules take none of Kafka's requests.
func TestInfer(t *testing.T) {
	requests, responses := firstBytes(t)
	for name, b := range requests {
		if match, request := (Protocol{}).Infer(b, true); !match || !request {
			t.Errorf("%s: match %v request %v", name, match, request)
		}
		if m, _ := (Protocol{}).Infer(b, false); m {
			t.Errorf("%s: matched a datagram", name)
		}
		for _, p := range []protocols.Protocol{http.Protocol{}, dns.Protocol{}, pgsql.Protocol{}, mysql.Protocol{}, redis.Protocol{}} {
			if m, _ := p.Infer(b, true); m {
				t.Errorf("%s: %s's rule matched a Kafka request", name, p.Name())
			}
		}
	}
	for name, b := range responses {
		for i := range b {
			if m, _ := (Protocol{}).Infer(b[:i+1], true); m {
				t.Errorf("%s: a response matched, cut at %d", name, i+1)
			}
		}
	}
	for name, b := range dbtest.FirstBytes {
		for i := range b {
			if m, _ := (Protocol{}).Infer(b[:i+1], true); m {
				t.Errorf("%s cut at %d: matched", name, i+1)
			}
		}
	}
	for _, s := range []string{
		"\x00\x00\x00\x0e\x00\x12\x00\x03\x00\x00\x00\x01\x00\x02\x01\x02",    // a client id that is not text
		"\x00\x00\x00\x0e\x00\x12\x00\x63\x00\x00\x00\x01\x00\x00",            // ApiVersions v99
		"\x00\x00\x00\x0e\x01\x00\x00\x00\x00\x00\x00\x01\x00\x00",            // API key 256
		"\x00\x00\x00\x20\x00\x0c\x00\x01\x00\x00\x00\x01\x00\x01c\x00\x05gr", // a group id longer than the request
		"\x00\x00\x00\x0e\x00\x0c\x00\x01\x00\x00\x00\x01\x00\x00\xff\xf0",    // a negative length
		"\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05abcde",       // a client id past the size
	} {
		if m, _ := (Protocol{}).Infer([]byte(s), true); m {
			t.Errorf("%q matched", s)
		}
	}
	// A whole request must decode exactly.
	hb := heartbeatReq(1, "c", "g", 1, "m")
	if m, _ := (Protocol{}).Infer(hb, true); !m {
		t.Errorf("a heartbeat did not match")
	}
	long := append(append([]byte(nil), hb...), 'x')
	long[3]++
	if m, _ := (Protocol{}).Infer(long, true); m {
		t.Errorf("a heartbeat with a byte more than its fields matched")
	}
}
