package http2

import (
	"encoding/json"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzHTTP2Parser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its streams, header fields and bodies bounded, and write complete rows
// whose headers are JSON and whose bodies are within their bounds.
func FuzzHTTP2Parser(f *testing.F) {
	for _, file := range []string{"grpc", "nghttp_push_padding", "curl_post", "nghttp"} {
		var client, server []byte
		for _, c := range dbtest.Replay(f, "testdata/"+file+".bin") {
			if c.ToServer {
				client = append(client, c.Data...)
			} else {
				server = append(server, c.Data...)
			}
		}
		f.Add(client, server, uint8(0))
		f.Add(client, server, uint8(7))
		f.Add(client[len(preface):], server, uint8(230)) // mid-stream, with gaps
	}
	f.Fuzz(func(t *testing.T, client, server []byte, split uint8) {
		cfg := testConfig
		cfg.MaxBodyBytes, cfg.MaxHeaderBytes, cfg.MaxPending = 64, 512, 2
		for _, role := range roles {
			h := newHarness(t, role, cfg)
			c := h.Parser.(*conn)
			step := int(split%32) + 1
			if split == 0 {
				step = max(len(client), len(server), 1)
			}
			dirs := [2]protocols.Direction{protocols.Egress, protocols.Ingress}
			if role == protocols.RoleServer {
				dirs[0], dirs[1] = dirs[1], dirs[0]
			}
			ts := int64(1)
			for i := 0; i < len(client) || i < len(server); i += step {
				ts += 1000
				if i < len(client) {
					h.Parser.Data(protocols.Segment{Dir: dirs[0], TS: ts, Data: client[i:min(i+step, len(client))]})
				}
				if i < len(server) {
					h.Parser.Data(protocols.Segment{Dir: dirs[1], TS: ts, Data: server[i:min(i+step, len(server))]})
				}
				if split > 200 && i%5 == 2 {
					h.Parser.Gap(dirs[i%2], int(split-200))
				}
				if len(c.streams) > c.max {
					t.Fatalf("%d streams kept, at most %d", len(c.streams), c.max)
				}
				for _, st := range c.streams {
					for _, hf := range []*half{&st.req, &st.resp} {
						if len(hf.body) > cfg.MaxBodyBytes || hf.hbytes > cfg.MaxHeaderBytes {
							t.Fatalf("stream %d: %d body bytes, %d header bytes kept", st.id, len(hf.body), hf.hbytes)
						}
					}
				}
				for _, s := range c.sides {
					if s.hp.bytes > cfg.MaxHeaderBytes {
						t.Fatalf("%d header bytes in a block", s.hp.bytes)
					}
				}
			}
			h.Parser.Poll(ts + 1<<40)
			h.Parser.Close(ts + 1<<40)
			if h.Parser.Pending() != 0 {
				t.Fatalf("%d streams pending after close", h.Parser.Pending())
			}
			for _, r := range h.Rows("http_events") {
				for _, col := range []string{"req_headers", "resp_headers"} {
					if !json.Valid([]byte(r[col].(string))) {
						t.Fatalf("%s %q is not JSON", col, r[col])
					}
				}
				bound := cfg.MaxBodyBytes
				if r["content_type"] == int64(2) {
					bound *= 4
				}
				if len(r["req_body"].(string)) > bound || len(r["resp_body"].(string)) > bound {
					t.Fatalf("bodies of %d and %d bytes", len(r["req_body"].(string)), len(r["resp_body"].(string)))
				}
			}
		}
	})
}
