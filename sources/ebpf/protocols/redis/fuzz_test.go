package redis

import (
	"encoding/json"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzRedisParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its buffers and queue bounded, and every row's text must be within the
// configured bounds, its arguments JSON when not cut.
func FuzzRedisParser(f *testing.F) {
	for _, file := range []string{"pubsub-2", "pubsub-3"} {
		var client, server []byte
		for _, c := range dbtest.Replay(f, "testdata/"+file+".bin") {
			if c.ToServer {
				client = append(client, c.Data...)
			} else {
				server = append(server, c.Data...)
			}
		}
		f.Add(client, server, uint8(3))
	}
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"),
		[]byte("+OK\r\n$1\r\nv\r\n%1\r\n+a\r\n*2\r\n:1\r\n_\r\n|1\r\n+x\r\n+y\r\n+PONG\r\n"), uint8(0))
	f.Fuzz(func(t *testing.T, client, server []byte, split uint8) {
		cfg := testConfig
		cfg.MaxBodyBytes, cfg.MaxHeaderBytes = 64, 128
		for _, role := range roles {
			h := newHarness(t, role, cfg)
			step := int(split%32) + 1
			for i := 0; i < len(client) || i < len(server); i += step {
				if i < len(client) {
					h.send(true, string(client[i:min(i+step, len(client))]), 0)
				}
				if i < len(server) {
					h.send(false, string(server[i:min(i+step, len(server))]), 0)
				}
				if split > 200 && i%5 == 2 {
					h.c.Gap(protocols.Ingress, int(split-200))
				}
			}
			h.c.Poll(h.ts + 1<<40)
			h.c.Close(h.ts + 1<<40)
			if cap(h.c.req.line) > 2*cfg.MaxHeaderBytes+2 || cap(h.c.resp.line) > 2*cfg.MaxHeaderBytes+2 ||
				cap(h.c.req.bulk) > 2*cfg.MaxHeaderBytes || cap(h.c.resp.bulk) > 2*cfg.MaxHeaderBytes || h.c.Pending() != 0 {
				t.Fatalf("not bounded: pending %d", h.c.Pending())
			}
			for _, r := range h.rows() {
				args, resp := r["req_args"].(string), r["resp"].(string)
				if len(resp) > 2*cfg.MaxBodyBytes+1 || len(args) > cfg.MaxHeaderBytes {
					t.Fatalf("row not bounded: args %d resp %d bytes", len(args), len(resp))
				}
				if len(args) < cfg.MaxHeaderBytes-8 && args != "" && !json.Valid([]byte(args)) {
					t.Fatalf("args %q not JSON", args)
				}
			}
		}
	})
}
