package http

import (
	"encoding/json"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

// row is an http_events row, by column name.
type row map[string]any

// harness is one connection of the HTTP parser, with its rows written to
// a real http_events table (protocoltest).
type harness struct {
	*protocoltest.Harness
	c  *conn
	ts int64
}

func newHarness(t testing.TB, role protocols.Role, maxBody int) *harness {
	ph := protocoltest.New(t, Protocol{}, protocols.Conn{
		Role:   role,
		Stream: true,
		Local:  netip.MustParseAddrPort("127.0.0.1:8080"),
		Remote: netip.MustParseAddrPort("127.0.0.1:50000"),
	}, protocols.Config{MaxBodyBytes: maxBody, MaxHeaderBytes: 16 << 10, MaxPending: 16, RequestTimeout: time.Minute})
	return &harness{Harness: ph, c: ph.Parser.(*conn), ts: 1000}
}

// rows returns the http_events rows written so far.
func (h *harness) rows() []row {
	var out []row
	for _, r := range h.Rows(Table.Name()) {
		out = append(out, r)
	}
	return out
}

// send feeds s in one direction, split into pieces at random points (as
// syscalls would), advancing time by 1 µs per piece.
func (h *harness) send(dir protocols.Direction, s string, rnd *rand.Rand) {
	b := []byte(s)
	for len(b) > 0 {
		n := len(b)
		if rnd != nil {
			n = 1 + rnd.Intn(len(b))
		}
		h.ts += 1000
		h.c.Data(protocols.Segment{Dir: dir, TS: h.ts, Data: b[:n]})
		b = b[n:]
	}
}

const (
	get1   = "GET /a?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n"
	post1  = "POST /submit HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"k\":\"value\"}"
	resp1  = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	resp2  = "HTTP/1.1 201 Created\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\n\r\n{}"
	chunk1 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
)

func TestClientKeepAlive(t *testing.T) {
	for seed := int64(0); seed < 50; seed++ {
		rnd := rand.New(rand.NewSource(seed))
		h := newHarness(t, protocols.RoleClient, 1024)
		h.send(protocols.Egress, get1, rnd)
		h.send(protocols.Ingress, resp1, rnd)
		h.send(protocols.Egress, post1, rnd)
		h.send(protocols.Ingress, resp2, rnd)
		if len(h.rows()) != 2 {
			t.Fatalf("seed %d: %d rows, want 2 (counts %v)", seed, len(h.rows()), h.Counts)
		}
		r := h.rows()[0]
		want := row{"req_method": "GET", "req_path": "/a?x=1", "resp_status": int64(200), "resp_message": "OK",
			"resp_body": "hello", "resp_body_size": int64(5), "req_body": "", "req_body_size": int64(0),
			"major_version": int64(1), "minor_version": int64(1), "trace_role": int64(1), "content_type": int64(0),
			"remote_addr": "127.0.0.1", "remote_port": int64(50000), "local_port": int64(8080)}
		check(t, r, want)
		var hdr map[string]string
		if err := json.Unmarshal([]byte(r["req_headers"].(string)), &hdr); err != nil || hdr["Host"] != "example" || hdr["User-Agent"] != "t" {
			t.Fatalf("req_headers %v (%v)", r["req_headers"], err)
		}
		if r["latency"].(int64) <= 0 || r["time_"].(int64) <= 0 {
			t.Fatalf("latency %v time %v", r["latency"], r["time_"])
		}
		check(t, h.rows()[1], row{"req_method": "POST", "req_body": `{"k":"value"}`, "req_body_size": int64(13),
			"resp_status": int64(201), "resp_body": "{}", "content_type": int64(1)})
		if len(h.Counts) != 0 {
			t.Fatalf("seed %d: counters %v", seed, h.Counts)
		}
	}
}

// A client that writes on one thread and reads on another can have its
// response's read return, and be captured, before its request's write:
// the response waits for the request instead of being dropped.
func TestResponseCapturedBeforeRequest(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 1024)
	h.send(protocols.Egress, get1, nil)
	h.send(protocols.Ingress, resp1, nil)
	h.send(protocols.Ingress, resp2, nil) // ahead of its request
	h.send(protocols.Egress, post1, nil)
	if len(h.rows()) != 2 || h.Counts["responses_before_request"] != 1 || h.Counts["unmatched_responses"] != 0 {
		t.Fatalf("%d rows, counts %v", len(h.rows()), h.Counts)
	}
	check(t, h.rows()[1], row{"req_method": "POST", "req_body": `{"k":"value"}`, "resp_status": int64(201), "latency": int64(0)})

	// A response with no request at all is counted when it times out
	// or the connection closes.
	h.send(protocols.Ingress, resp1, nil)
	h.c.Poll(h.ts + 2e9)
	h.send(protocols.Ingress, resp1, nil)
	h.c.Close(h.ts)
	if len(h.rows()) != 2 || h.Counts["unmatched_responses"] != 2 {
		t.Fatalf("%d rows, counts %v", len(h.rows()), h.Counts)
	}
}

func TestServerPipelined(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, 1024)
	// Two requests in one read, then both responses in one write.
	h.send(protocols.Ingress, get1+post1, nil)
	h.send(protocols.Egress, resp1+resp2, nil)
	if len(h.rows()) != 2 {
		t.Fatalf("%d rows, want 2 (%v)", len(h.rows()), h.Counts)
	}
	check(t, h.rows()[0], row{"req_method": "GET", "resp_status": int64(200), "trace_role": int64(2)})
	check(t, h.rows()[1], row{"req_method": "POST", "resp_status": int64(201)})
}

func TestChunkedAndTruncation(t *testing.T) {
	for seed := int64(0); seed < 50; seed++ {
		rnd := rand.New(rand.NewSource(seed))
		h := newHarness(t, protocols.RoleClient, 8)
		h.send(protocols.Egress, get1, rnd)
		h.send(protocols.Ingress, chunk1, rnd)
		if len(h.rows()) != 1 {
			t.Fatalf("seed %d: %d rows (%v)", seed, len(h.rows()), h.Counts)
		}
		check(t, h.rows()[0], row{"resp_body": "hello, w", "resp_body_size": int64(12)})
	}
}

func TestHeadAnd204AndContinue(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 64)
	h.send(protocols.Egress, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", nil)
	h.send(protocols.Ingress, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", nil)
	h.send(protocols.Egress, "DELETE /x HTTP/1.1\r\n\r\n", nil)
	h.send(protocols.Ingress, "HTTP/1.1 204 No Content\r\n\r\n", nil)
	h.send(protocols.Egress, "PUT /y HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", nil)
	h.send(protocols.Ingress, "HTTP/1.1 100 Continue\r\n\r\n", nil)
	h.send(protocols.Egress, "abc", nil)
	h.send(protocols.Ingress, resp1, nil)
	if len(h.rows()) != 3 {
		t.Fatalf("%d rows (%v)", len(h.rows()), h.Counts)
	}
	check(t, h.rows()[0], row{"req_method": "HEAD", "resp_body_size": int64(0)})
	check(t, h.rows()[1], row{"req_method": "DELETE", "resp_status": int64(204)})
	check(t, h.rows()[2], row{"req_method": "PUT", "req_body": "abc", "resp_status": int64(200)})
}

func TestUntilCloseAndClosedBeforeResponse(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 64)
	h.send(protocols.Egress, "GET / HTTP/1.0\r\n\r\n", nil)
	h.send(protocols.Ingress, "HTTP/1.0 200 OK\r\n\r\nstreamed body", nil)
	if len(h.rows()) != 0 {
		t.Fatal("row before close")
	}
	h.c.Close(h.ts)
	if len(h.rows()) != 1 {
		t.Fatalf("%d rows", len(h.rows()))
	}
	check(t, h.rows()[0], row{"resp_body": "streamed body", "minor_version": int64(0)})

	h = newHarness(t, protocols.RoleClient, 64)
	h.send(protocols.Egress, get1, nil)
	h.c.Close(h.ts)
	if len(h.rows()) != 0 || h.Counts["closed_before_response"] != 1 {
		t.Fatalf("rows %d counts %v", len(h.rows()), h.Counts)
	}
}

func TestGapInsideBodyKeepsMessage(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 4)
	h.send(protocols.Egress, get1, nil)
	h.send(protocols.Ingress, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabcdef", nil)
	h.c.Gap(protocols.Ingress, 100000-6)
	if len(h.rows()) != 1 {
		t.Fatalf("%d rows (%v)", len(h.rows()), h.Counts)
	}
	check(t, h.rows()[0], row{"resp_body": "abcd", "resp_body_size": int64(100000)})
}

func TestGarbageThenRecovery(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 64)
	h.send(protocols.Egress, "\x00\x01garbage that is not http\r\n\r\n", nil)
	h.send(protocols.Ingress, "more garbage", nil)
	h.send(protocols.Egress, get1, nil)
	h.send(protocols.Ingress, resp1, nil)
	if len(h.rows()) != 1 {
		t.Fatalf("%d rows (%v)", len(h.rows()), h.Counts)
	}
	if h.Counts["parse_errors"] != 2 {
		t.Fatalf("counts %v", h.Counts)
	}
}

func TestHeadTooLong(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 64)
	h.send(protocols.Egress, "GET / HTTP/1.1\r\nX: "+strings.Repeat("a", 20<<10)+"\r\n\r\n", nil)
	if h.Counts["parse_errors"] != 1 {
		t.Fatalf("counts %v", h.Counts)
	}
	if n := len(h.c.req.buf); n > 17<<10 {
		t.Fatalf("buffer grew to %d", n)
	}
}

func TestInfer(t *testing.T) {
	for _, tc := range []struct {
		in         string
		match, req bool
	}{
		{"GET / HTTP/1.1\r\n", true, true},
		{"HTTP/1.1 200 OK\r\n", true, false},
		{"\x16\x03\x01\x02\x00\x01\x00\x01", false, false},
		{"GETX / HTTP/1.1", false, false},
	} {
		m, r := Protocol{}.Infer([]byte(tc.in), true)
		if m != tc.match || r != tc.req {
			t.Errorf("Infer(%q) = %v %v", tc.in, m, r)
		}
	}
}

func check(t *testing.T, r row, want row) {
	t.Helper()
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r[k], v)
		}
	}
}

func FuzzHTTPParser(f *testing.F) {
	for _, s := range []string{get1, post1, resp1, resp2, chunk1, get1 + post1, "HTTP/1.1 200 OK\r\n\r\n"} {
		f.Add([]byte(s), []byte(resp1), uint8(3))
	}
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		for _, role := range []protocols.Role{protocols.RoleClient, protocols.RoleServer} {
			h := newHarness(t, role, 32)
			step := int(split%64) + 1
			for i := 0; i < len(a) || i < len(b); i += step {
				if i < len(a) {
					h.c.Data(protocols.Segment{Dir: protocols.Egress, TS: int64(i), Data: a[i:min(i+step, len(a))]})
				}
				if i < len(b) {
					h.c.Data(protocols.Segment{Dir: protocols.Ingress, TS: int64(i), Data: b[i:min(i+step, len(b))]})
				}
				if i%7 == 3 {
					h.c.Gap(protocols.Ingress, int(split))
				}
			}
			h.c.Poll(1 << 40)
			h.c.Close(1 << 40)
			if len(h.c.req.buf) > 16<<10+64 || len(h.c.resp.buf) > 16<<10+64 {
				t.Fatalf("buffer not bounded")
			}
			for _, r := range h.rows() {
				if len(r["req_body"].(string)) > 32 || len(r["resp_body"].(string)) > 32 {
					t.Fatalf("body not truncated")
				}
				if !json.Valid([]byte(r["req_headers"].(string))) || !json.Valid([]byte(r["resp_headers"].(string))) {
					t.Fatalf("headers not JSON")
				}
			}
		}
	})
}

// TestInferNotNATS: a NATS client's CONNECT is not an HTTP request; an
// HTTP CONNECT is.
func TestInferNotNATS(t *testing.T) {
	if ok, _ := (Protocol{}).Infer([]byte(`CONNECT {"verbose":false,"pedantic":false}`+"\r\n"), true); ok {
		t.Error("a NATS CONNECT was taken for HTTP")
	}
	if ok, req := (Protocol{}).Infer([]byte("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"), true); !ok || !req {
		t.Error("an HTTP CONNECT was not recognised")
	}
}
