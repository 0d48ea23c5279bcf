package mysql

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzMySQLParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its buffers and queue bounded, and every row's text must be within the
// configured bounds.
func FuzzMySQLParser(f *testing.F) {
	dbtest.AddRecordings(f, 5, "mariadb", "mariadb_admin", "perl_prepared")
	f.Add(cat(pkt(0, s("\x16select ?")), pkt(0, s("\x17"), le32(1), s("\x00"), le32(1), s("\x00\x01\x08\x00"), le64(7))),
		cat(pkt(1, s("\x00"), le32(1), le16(1), le16(1), s("\x00"), le16(0)), pkt(2, colDef), pkt(3, eofPkt), pkt(4, colDef), pkt(5, eofPkt),
			pkt(1, s("\x01")), pkt(2, colDef), pkt(3, eofPkt), pkt(4, s("\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00")), pkt(5, eofPkt)), uint8(0))
	target.Fuzz(f, func(t *testing.T, h *dbtest.Side) {
		cfg := dbtest.FuzzConfig
		c := h.Parser.(*conn)
		if cap(c.client.buf) > 2*cfg.MaxHeaderBytes+2 || cap(c.server.buf) > 2*512 || c.Pending() != 0 {
			t.Fatalf("not bounded: buffers %d %d, pending %d", cap(c.client.buf), cap(c.server.buf), c.Pending())
		}
		for _, r := range h.Rows() {
			if len(r["resp_body"].(string)) > cfg.MaxBodyBytes || len(r["req_body"].(string)) > cfg.MaxHeaderBytes {
				t.Fatalf("row not bounded: req %d resp %d bytes", len(r["req_body"].(string)), len(r["resp_body"].(string)))
			}
		}
	})
}
