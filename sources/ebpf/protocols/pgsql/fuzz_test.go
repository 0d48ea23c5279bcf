package pgsql

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzPgsqlParser feeds arbitrary frontend and backend bytes, in pieces
// and with gaps, to the parser on both sides: it must not panic, must
// keep its buffers and queues bounded, and every row's text must be
// within the configured bounds.
func FuzzPgsqlParser(f *testing.F) {
	dbtest.AddRecordings(f, 7, "psql", "psql_copy_in", "psql_ssl_refused", "pgbench_prepared", "pgbench_extended")
	f.Add(cat(msg('P', "", "select $1", int16(1), int32(23)), msg('B', "", "", int16(1), int16(1), int16(1), value(be32(5)), int16(1), int16(1)), msg('E', "", int32(0)), sync),
		cat(parseComplete, bindComplete, dataRow(be32(5)), msg('C', "SELECT 1"), readyIdle), uint8(0))
	target.Fuzz(f, func(t *testing.T, h *dbtest.Side) {
		cfg := dbtest.FuzzConfig
		c := h.Parser.(*conn)
		if cap(c.front.buf) > 2*cfg.MaxHeaderBytes || cap(c.back.buf) > 2*cfg.MaxHeaderBytes || c.Pending() != 0 {
			t.Fatalf("not bounded: buffers %d %d, pending %d", cap(c.front.buf), cap(c.back.buf), c.Pending())
		}
		for _, r := range h.Rows() {
			if len(r["resp"].(string)) > cfg.MaxBodyBytes || len(r["req"].(string)) > cfg.MaxHeaderBytes+32 {
				t.Fatalf("row not bounded: req %d resp %d bytes", len(r["req"].(string)), len(r["resp"].(string)))
			}
		}
	})
}
