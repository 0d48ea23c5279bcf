package amqp

import (
	"encoding/json"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzAMQPParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its buffers and queues bounded, and every row must be complete, its
// messages JSON within the bounds.
func FuzzAMQPParser(f *testing.F) {
	// The recorded session without its large bodies, as a seed of
	// bytes that frame.
	var client, server []byte
	for _, c := range dbtest.Replay(f, "testdata/amqp091_go.bin") {
		if len(c.Data) > 2048 {
			continue
		}
		if c.ToServer {
			client = append(client, c.Data...)
		} else {
			server = append(server, c.Data...)
		}
	}
	f.Add(client, server, uint8(5))
	f.Add(client, server, uint8(210))
	f.Add(cat(methodFrame(1, 60, 40, u16(0), shortStr("x"), shortStr("k"), []byte{0}), headerFrame(1, 3, 0x9000, shortStr("t"), []byte{2}), frameOf(frameBody, 1, []byte("abc"))),
		cat(methodFrame(1, 20, 40, u16(404), shortStr("no"), u16(50), u16(10)), methodFrame(0, 10, 50, u16(0), shortStr(""), u16(0), u16(0))), uint8(0))
	f.Fuzz(func(t *testing.T, client, server []byte, split uint8) {
		cfg := testConfig
		cfg.MaxBodyBytes, cfg.MaxHeaderBytes, cfg.MaxPending = 64, 256, 8
		for _, role := range roles {
			h := newHarness(t, role, cfg)
			step := int(split%32) + 1
			for i := 0; i < len(client) || i < len(server); i += step {
				if i < len(client) {
					h.send(true, client[i:min(i+step, len(client))], 0)
				}
				if i < len(server) {
					h.send(false, server[i:min(i+step, len(server))], 0)
				}
				if split > 200 && i%5 == 2 {
					h.c.Gap(protocols.Ingress, int(split-200))
				}
			}
			for i := range h.c.sides {
				s := &h.c.sides[i]
				if len(s.r.buf) > max(cfg.MaxHeaderBytes, cfg.MaxBodyBytes) || len(s.content) > maxChannels {
					t.Fatalf("side %d not bounded: frame %d bytes, %d contents", i, len(s.r.buf), len(s.content))
				}
				for _, m := range s.content {
					if len(m.body) > cfg.MaxBodyBytes {
						t.Fatalf("a body of %d bytes kept", len(m.body))
					}
				}
			}
			if h.c.Pending() > cfg.MaxPending {
				t.Fatalf("%d asks waiting", h.c.Pending())
			}
			h.c.Poll(h.ts + 1<<40)
			h.c.Close(h.ts + 1<<40)
			if h.c.Pending() != 0 {
				t.Fatalf("pending %d after close", h.c.Pending())
			}
			for _, r := range h.rows() {
				for _, col := range []string{"req_msg", "resp_msg"} {
					msg := r[col].(string)
					// Escaping can make a kept byte six.
					if len(msg) > 6*(cfg.MaxHeaderBytes+cfg.MaxBodyBytes)+256 {
						t.Fatalf("%s of %d bytes", col, len(msg))
					}
					if msg != "" && !json.Valid([]byte(msg)) {
						t.Fatalf("%s %q is not JSON", col, msg)
					}
				}
				if r["req_class_id"] == int64(0) && r["resp_class_id"] == int64(0) {
					t.Fatalf("a row without a method: %v", r)
				}
			}
		}
	})
}
