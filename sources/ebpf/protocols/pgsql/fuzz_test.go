package pgsql

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzPgsqlParser feeds arbitrary frontend and backend bytes, in pieces
// and with gaps, to the parser on both sides: it must not panic, must
// keep its buffers and queues bounded, and every row's text must be
// within the configured bounds.
func FuzzPgsqlParser(f *testing.F) {
	for _, file := range []string{"psql", "psql_copy_in", "psql_ssl_refused", "pgbench_prepared", "pgbench_extended"} {
		var front, back []byte
		for _, c := range dbtest.Replay(f, "testdata/"+file+".bin") {
			if c.ToServer {
				front = append(front, c.Data...)
			} else {
				back = append(back, c.Data...)
			}
		}
		f.Add(front, back, uint8(7))
	}
	f.Add(cat(msg('P', "", "select $1", int16(1), int32(23)), msg('B', "", "", int16(1), int16(1), int16(1), value(be32(5)), int16(1), int16(1)), msg('E', "", int32(0)), sync),
		cat(parseComplete, bindComplete, dataRow(be32(5)), msg('C', "SELECT 1"), readyIdle), uint8(0))
	f.Fuzz(func(t *testing.T, front, back []byte, split uint8) {
		cfg := testConfig
		cfg.MaxBodyBytes, cfg.MaxHeaderBytes = 64, 128
		for _, role := range roles {
			h := newHarness(t, role, cfg)
			step := int(split%32) + 1
			for i := 0; i < len(front) || i < len(back); i += step {
				if i < len(front) {
					h.send(true, front[i:min(i+step, len(front))], 0)
				}
				if i < len(back) {
					h.send(false, back[i:min(i+step, len(back))], 0)
				}
				if split > 200 && i%5 == 2 {
					h.c.Gap(protocols.Ingress, int(split-200))
				}
			}
			h.c.Poll(h.ts + 1<<40)
			h.c.Close(h.ts + 1<<40)
			if cap(h.c.front.buf) > 2*cfg.MaxHeaderBytes || cap(h.c.back.buf) > 2*cfg.MaxHeaderBytes || h.c.Pending() != 0 {
				t.Fatalf("not bounded: buffers %d %d, pending %d", cap(h.c.front.buf), cap(h.c.back.buf), h.c.Pending())
			}
			for _, r := range h.rows() {
				if len(r["resp"].(string)) > cfg.MaxBodyBytes || len(r["req"].(string)) > cfg.MaxHeaderBytes+32 {
					t.Fatalf("row not bounded: req %d resp %d bytes", len(r["req"].(string)), len(r["resp"].(string)))
				}
			}
		}
	})
}
