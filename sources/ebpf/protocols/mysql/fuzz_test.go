package mysql

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzMySQLParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its buffers and queue bounded, and every row's text must be within the
// configured bounds.
func FuzzMySQLParser(f *testing.F) {
	for _, file := range []string{"mariadb", "mariadb_admin", "perl_prepared"} {
		var client, server []byte
		for _, c := range dbtest.Replay(f, "testdata/"+file+".bin") {
			if c.ToServer {
				client = append(client, c.Data...)
			} else {
				server = append(server, c.Data...)
			}
		}
		f.Add(client, server, uint8(5))
	}
	f.Add(cat(pkt(0, s("\x16select ?")), pkt(0, s("\x17"), le32(1), s("\x00"), le32(1), s("\x00\x01\x08\x00"), le64(7))),
		cat(pkt(1, s("\x00"), le32(1), le16(1), le16(1), s("\x00"), le16(0)), pkt(2, colDef), pkt(3, eofPkt), pkt(4, colDef), pkt(5, eofPkt),
			pkt(1, s("\x01")), pkt(2, colDef), pkt(3, eofPkt), pkt(4, s("\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00")), pkt(5, eofPkt)), uint8(0))
	f.Fuzz(func(t *testing.T, client, server []byte, split uint8) {
		cfg := testConfig
		cfg.MaxBodyBytes, cfg.MaxHeaderBytes = 64, 128
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
			h.c.Poll(h.ts + 1<<40)
			h.c.Close(h.ts + 1<<40)
			if cap(h.c.client.buf) > 2*cfg.MaxHeaderBytes+2 || cap(h.c.server.buf) > 2*512 || h.c.Pending() != 0 {
				t.Fatalf("not bounded: buffers %d %d, pending %d", cap(h.c.client.buf), cap(h.c.server.buf), h.c.Pending())
			}
			for _, r := range h.rows() {
				if len(r["resp_body"].(string)) > cfg.MaxBodyBytes || len(r["req_body"].(string)) > cfg.MaxHeaderBytes {
					t.Fatalf("row not bounded: req %d resp %d bytes", len(r["req_body"].(string)), len(r["resp_body"].(string)))
				}
			}
		}
	})
}
