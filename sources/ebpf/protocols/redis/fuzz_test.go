package redis

import (
	"encoding/json"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzRedisParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its buffers and queue bounded, and every row's text must be within the
// configured bounds, its arguments JSON when not cut.
func FuzzRedisParser(f *testing.F) {
	dbtest.AddRecordings(f, 3, "pubsub-2", "pubsub-3")
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"),
		[]byte("+OK\r\n$1\r\nv\r\n%1\r\n+a\r\n*2\r\n:1\r\n_\r\n|1\r\n+x\r\n+y\r\n+PONG\r\n"), uint8(0))
	target.Fuzz(f, func(t *testing.T, h *dbtest.Side) {
		cfg := dbtest.FuzzConfig
		c := h.Parser.(*conn)
		if cap(c.req.line) > 2*cfg.MaxHeaderBytes+2 || cap(c.resp.line) > 2*cfg.MaxHeaderBytes+2 ||
			cap(c.req.bulk) > 2*cfg.MaxHeaderBytes || cap(c.resp.bulk) > 2*cfg.MaxHeaderBytes || c.Pending() != 0 {
			t.Fatalf("not bounded: pending %d", c.Pending())
		}
		for _, r := range h.Rows() {
			args, resp := r["req_args"].(string), r["resp"].(string)
			if len(resp) > 2*cfg.MaxBodyBytes+1 || len(args) > cfg.MaxHeaderBytes {
				t.Fatalf("row not bounded: args %d resp %d bytes", len(args), len(resp))
			}
			if len(args) < cfg.MaxHeaderBytes-8 && args != "" && !json.Valid([]byte(args)) {
				t.Fatalf("args %q not JSON", args)
			}
		}
	})
}
