package http2

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

// peer writes the frames of one side with x/net's framer and HPACK
// encoder, for crafted exchanges.
type peer struct {
	buf  bytes.Buffer
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
}

func newPeer(client bool) *peer {
	p := &peer{}
	if client {
		p.buf.WriteString(preface)
	}
	p.fr = http2.NewFramer(&p.buf, nil)
	p.enc = hpack.NewEncoder(&p.hbuf)
	p.fr.WriteSettings()
	return p
}

// block encodes header fields given as name, value, name, value, ….
func (p *peer) block(kv ...string) []byte {
	p.hbuf.Reset()
	for i := 0; i < len(kv); i += 2 {
		p.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(p.hbuf.Bytes())
}

func (p *peer) headers(id uint32, end bool, kv ...string) {
	p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: p.block(kv...), EndStream: end, EndHeaders: true})
}

func (p *peer) data(id uint32, end bool, b string) { p.fr.WriteData(id, end, []byte(b)) }

// take returns what the peer wrote since the last take.
func (p *peer) take() []byte {
	b := bytes.Clone(p.buf.Bytes())
	p.buf.Reset()
	return b
}

// exchange is a crafted connection: what each side sent, in order.
type exchange []struct {
	client bool
	data   []byte
}

func (x *exchange) add(client bool, b []byte) {
	if len(b) > 0 {
		*x = append(*x, struct {
			client bool
			data   []byte
		}{client, b})
	}
}

// run parses x as the given side, in pieces of split bytes (whole
// segments when 0), 1 µs apart, and closes the connection.
func run(t testing.TB, x exchange, role protocols.Role, cfg protocols.Config, split int) *protocoltest.Harness {
	h := newHarness(t, role, cfg)
	ts := int64(1e9)
	for _, s := range x {
		dir := protocols.Ingress
		if s.client == (role == protocols.RoleClient) {
			dir = protocols.Egress
		}
		for b := s.data; len(b) > 0; {
			n := len(b)
			if split > 0 {
				n = min(n, split)
			}
			ts += 1000
			h.Parser.Data(protocols.Segment{Dir: dir, TS: ts, Data: b[:n]})
			b = b[n:]
		}
	}
	h.Parser.Close(ts + 1000)
	return h
}

// grpcMsg frames protobuf bytes as a gRPC message.
func grpcMsg(pb string) string {
	return string(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(pb)))) + pb
}

func request(path string, kv ...string) []string {
	return append([]string{":method", "POST", ":scheme", "http", ":path", path, ":authority", "svc:50051"}, kv...)
}

// TestEveryColumn checks every column of one gRPC row.
func TestEveryColumn(t *testing.T) {
	c, s := newPeer(true), newPeer(false)
	var x exchange
	x.add(true, c.take())
	x.add(false, s.take())
	c.headers(1, false, request("/pkg.Svc/Get", "content-type", "application/grpc", "te", "trailers")...)
	c.data(1, true, grpcMsg("\x0a\x03abc"))
	x.add(true, c.take())
	s.headers(1, false, ":status", "200", "content-type", "application/grpc")
	s.data(1, false, grpcMsg("\x08\x96\x01")+grpcMsg("\x15\x01\x00\x00\x00"))
	s.headers(1, true, "grpc-status", "0", "grpc-message", "")
	x.add(false, s.take())
	h := run(t, x, protocols.RoleServer, testConfig, 0)
	rows := h.Rows("http_events")
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	want := row{
		"time_": int64(1e9 + 4000), "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(8080),
		"trace_role": int64(2), "encrypted": false,
		"major_version": int64(2), "minor_version": int64(0), "content_type": int64(2),
		"req_headers": `{":authority":"svc:50051",":method":"POST",":path":"/pkg.Svc/Get",":scheme":"http","content-type":"application/grpc","te":"trailers"}`,
		"req_method":  "POST", "req_path": "/pkg.Svc/Get", "req_body": `1: "abc"`, "req_body_size": int64(5),
		"resp_headers": `{":status":"200","content-type":"application/grpc","grpc-message":"","grpc-status":"0"}`,
		"resp_status":  int64(200), "resp_message": "OK", "resp_body": "1: 150\n2: 0x00000001", "resp_body_size": int64(8),
		"latency": int64(1000),
	}
	if len(rows[0]) != len(want) {
		t.Errorf("%d columns, want %d", len(rows[0]), len(want))
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, rows[0][k], v)
		}
	}
}

// TestInterleaved opens three streams at once, sends their bodies
// interleaved, and answers them out of order, with a 100 Continue and
// trailers; every split of the bytes gives the same rows.
func TestInterleaved(t *testing.T) {
	c, s := newPeer(true), newPeer(false)
	var x exchange
	x.add(true, c.take())
	x.add(false, s.take())
	for _, id := range []uint32{1, 3, 5} {
		c.headers(id, false, ":method", "PUT", ":scheme", "http", ":path", "/k"+string(rune('0'+id)), ":authority", "h")
	}
	c.data(3, false, "three-")
	c.data(1, false, "one-")
	c.data(5, true, "five")
	c.data(1, true, "one")
	c.data(3, true, "three")
	x.add(true, c.take())
	s.headers(5, false, ":status", "100")
	s.headers(3, true, ":status", "204")
	s.headers(5, false, ":status", "201", "location", "/k5")
	s.data(5, false, "made")
	s.headers(1, false, ":status", "404")
	s.data(5, true, "")
	s.data(1, false, "no")
	s.headers(1, true, "x-trailer", "t")
	x.add(false, s.take())
	want := []row{
		{"req_path": "/k3", "req_body": "three-three", "req_body_size": int64(11), "resp_status": int64(204), "resp_message": "No Content", "resp_body_size": int64(0), "resp_headers": `{":status":"204"}`},
		{"req_path": "/k5", "req_body": "five", "resp_status": int64(201), "resp_body": "made", "resp_headers": `{":status":"201","location":"/k5"}`},
		{"req_path": "/k1", "req_body": "one-one", "resp_status": int64(404), "resp_body": "no", "resp_headers": `{":status":"404","x-trailer":"t"}`},
	}
	for _, role := range roles {
		for _, split := range []int{0, 1, 2, 3, 5, 9, 10, 64} {
			h := run(t, x, role, testConfig, split)
			rows := h.Rows("http_events")
			if len(rows) != len(want) || len(h.Counts) != 0 {
				t.Fatalf("role %d split %d: %d rows, counters %v", role, split, len(rows), h.Counts)
			}
			for i, w := range want {
				for k, v := range w {
					if rows[i][k] != v {
						t.Errorf("role %d split %d row %d: %s = %#v, want %#v", role, split, i, k, rows[i][k], v)
					}
				}
			}
		}
	}
}

// TestResponseBeforeRequest: on the client's side the response's read
// can return before the request's write; the row is still made.
func TestResponseBeforeRequest(t *testing.T) {
	c, s := newPeer(true), newPeer(false)
	var x exchange
	x.add(true, c.take())
	x.add(false, s.take())
	c.headers(1, true, ":method", "GET", ":scheme", "http", ":path", "/early", ":authority", "h")
	req := c.take()
	s.headers(1, false, ":status", "200")
	s.data(1, true, "ok")
	x.add(false, s.take())
	x.add(true, req)
	h := run(t, x, protocols.RoleClient, testConfig, 0)
	rows := h.Rows("http_events")
	if len(rows) != 1 || rows[0]["req_path"] != "/early" || rows[0]["resp_body"] != "ok" || rows[0]["latency"] != int64(0) {
		t.Fatalf("rows %v", rows)
	}
	if h.Counts["responses_before_request"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestReset: a stream reset after its response headers is a row with
// what was seen; one reset before is counted.
func TestReset(t *testing.T) {
	c, s := newPeer(true), newPeer(false)
	var x exchange
	x.add(true, c.take())
	x.add(false, s.take())
	c.headers(1, false, ":method", "GET", ":scheme", "http", ":path", "/watch", ":authority", "h")
	c.headers(3, false, ":method", "GET", ":scheme", "http", ":path", "/never", ":authority", "h")
	x.add(true, c.take())
	s.headers(1, false, ":status", "200")
	s.data(1, false, "event 1")
	x.add(false, s.take())
	c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	c.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	x.add(true, c.take())
	for _, role := range roles {
		h := run(t, x, role, testConfig, 0)
		rows := h.Rows("http_events")
		if len(rows) != 1 || rows[0]["req_path"] != "/watch" || rows[0]["resp_body"] != "event 1" || rows[0]["latency"].(int64) <= 0 {
			t.Fatalf("rows %v", rows)
		}
		if h.Counts["streams_reset"] != 1 || len(h.Counts) != 1 {
			t.Errorf("counters %v", h.Counts)
		}
	}
}

// TestTimeoutsAndClose: a request never answered is dropped after the
// timeout; at close, a response that ended without the request ending is
// written, an unanswered request counted.
func TestTimeoutsAndClose(t *testing.T) {
	c, s := newPeer(true), newPeer(false)
	h := newHarness(t, protocols.RoleServer, testConfig)
	send := func(p *peer, ts int64) {
		dir := protocols.Egress
		if p == c {
			dir = protocols.Ingress
		}
		h.Parser.Data(protocols.Segment{Dir: dir, TS: ts, Data: p.take()})
	}
	send(c, 1)
	send(s, 2)
	c.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/slow", ":authority", "h")
	send(c, 3)
	h.Parser.Poll(int64(time.Minute) + 4)
	if h.Counts["requests_timed_out"] != 1 || h.Parser.Pending() != 0 {
		t.Errorf("after the timeout: counters %v, %d pending", h.Counts, h.Parser.Pending())
	}
	c.headers(3, false, ":method", "POST", ":scheme", "http", ":path", "/upload", ":authority", "h")
	c.headers(5, false, ":method", "POST", ":scheme", "http", ":path", "/open", ":authority", "h")
	send(c, 5)
	s.headers(3, true, ":status", "413")
	send(s, 6)
	h.Parser.Close(7)
	rows := h.Rows("http_events")
	if len(rows) != 1 || rows[0]["req_path"] != "/upload" || rows[0]["resp_status"] != int64(413) {
		t.Fatalf("rows %v", rows)
	}
	if h.Counts["closed_before_response"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestStreamsBound: past the streams a connection keeps, the oldest is
// dropped.
func TestStreamsBound(t *testing.T) {
	c, s := newPeer(true), newPeer(false)
	var x exchange
	x.add(true, c.take())
	x.add(false, s.take())
	cfg := testConfig
	cfg.MaxPending = 4 // 16 streams
	for id := uint32(1); id <= 2*20; id += 2 {
		c.headers(id, true, ":method", "GET", ":scheme", "http", ":path", "/", ":authority", "h")
	}
	x.add(true, c.take())
	for id := uint32(1); id <= 2*20; id += 2 {
		s.headers(id, true, ":status", "200")
	}
	x.add(false, s.take())
	h := run(t, x, protocols.RoleServer, cfg, 0)
	if n := len(h.Rows("http_events")); n != 16 || h.Counts["streams_dropped_full"] != 4 || h.Counts["unmatched_responses"] != 4 {
		t.Errorf("%d rows, counters %v", n, h.Counts)
	}
}

// TestBodiesBounded: bodies are kept up to MaxBodyBytes with their whole
// size; a gRPC body's text is cut at four times the bound.
func TestBodiesBounded(t *testing.T) {
	c, s := newPeer(true), newPeer(false)
	var x exchange
	x.add(true, c.take())
	x.add(false, s.take())
	cfg := testConfig
	cfg.MaxBodyBytes = 16
	c.headers(1, false, request("/s/Up", "content-type", "application/grpc")...)
	c.data(1, false, grpcMsg("\x0a\x05hello"))
	c.data(1, true, grpcMsg("\x0a\x30"+strings.Repeat("\x01", 0x30)))
	c.headers(3, false, ":method", "POST", ":scheme", "http", ":path", "/raw", ":authority", "h")
	c.data(3, true, strings.Repeat("r", 100))
	x.add(true, c.take())
	s.headers(1, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "0")
	s.headers(3, true, ":status", "200")
	x.add(false, s.take())
	rows := run(t, x, protocols.RoleServer, cfg, 0).Rows("http_events")
	if len(rows) != 2 {
		t.Fatalf("rows %v", rows)
	}
	// 16 bytes kept: the first message, and the second's prefix and 4
	// bytes: its one field is cut.
	if rows[0]["req_body"] != "1: \"hello\"\n<truncated>" || rows[0]["req_body_size"] != int64(7+2+0x30) {
		t.Errorf("gRPC body %q size %v", rows[0]["req_body"], rows[0]["req_body_size"])
	}
	if rows[1]["req_body"] != strings.Repeat("r", 16) || rows[1]["req_body_size"] != int64(100) {
		t.Errorf("body %q size %v", rows[1]["req_body"], rows[1]["req_body_size"])
	}
}
