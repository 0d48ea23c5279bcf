package kafka

import (
	"encoding/json"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// FuzzKafkaParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its queue and buffers bounded, and every row's bodies must be JSON
// within the bound, or empty.
func FuzzKafkaParser(f *testing.F) {
	for _, file := range []string{"testdata/franz-0.11.bin", "testdata/franz-franz.bin", "testdata/franz-2.4.bin"} {
		conns := map[int]*[2][]byte{}
		for _, c := range readRecording(f, file) {
			if conns[c.conn] == nil {
				conns[c.conn] = &[2][]byte{}
			}
			i := 1
			if c.toServer {
				i = 0
			}
			conns[c.conn][i] = append(conns[c.conn][i], c.data...)
		}
		for _, b := range conns {
			f.Add(b[0][:min(len(b[0]), 4096)], b[1][:min(len(b[1]), 4096)], uint8(5))
		}
	}
	f.Add(cat(produceReq(1, 0, "t", batch(3, 10)), heartbeatReq(2, "c", "g", 1, "m")), heartbeatResp(2, 0), uint8(0))
	f.Fuzz(func(t *testing.T, client, server []byte, split uint8) {
		cfg := testConfig
		cfg.MaxHeaderBytes, cfg.MaxPending = 256, 8
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
				if h.c.Pending() > cfg.MaxPending || len(h.c.orphans) > maxOrphans {
					t.Fatalf("pending %d orphans %d", h.c.Pending(), len(h.c.orphans))
				}
			}
			for _, d := range []*decoder{&h.c.req.dec, &h.c.resp.dec} {
				if cap(d.str) > 2*maxString || len(d.stack) > 64 {
					t.Fatalf("decoder not bounded: str %d stack %d", cap(d.str), len(d.stack))
				}
			}
			h.c.Poll(h.ts + 1<<40)
			h.c.Close(h.ts + 1<<40)
			if h.c.Pending() != 0 {
				t.Fatalf("%d pending after close", h.c.Pending())
			}
			for _, r := range h.rows() {
				for _, col := range []string{"req_body", "resp"} {
					s := r[col].(string)
					if s != "" && !json.Valid([]byte(s)) {
						t.Fatalf("%s not JSON: %q", col, s)
					}
					if len(s) > cfg.MaxHeaderBytes+8*maxString+256 {
						t.Fatalf("%s of %d bytes", col, len(s))
					}
				}
			}
		}
	})
}
