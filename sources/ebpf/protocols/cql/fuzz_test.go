package cql

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzCQLParser feeds arbitrary client and server bytes, in pieces and
// with gaps, to the parser on both sides: it must not panic, must keep
// its queue and buffers bounded, and every row's text must be within
// the bound.
func FuzzCQLParser(f *testing.F) {
	dbtest.AddRecordings(f, 3, "gocql-v4-control", "gocql-v4-queries")
	dbtest.AddRecordings(f, 211, "gocql-v3-queries")
	v5 := func(resp bool, stream int16, op byte, body []byte) []byte { return env(5, resp, 0, stream, op, body) }
	f.Add(cat(v5(false, 0, opStartup, b(nil).short(1).str("CQL_VERSION").str("3.0.0")), frame5(v5(false, 1, opQuery, b(nil).long("SELECT 1").short(1).int(0)), true)),
		cat(v5(true, 0, opReady, nil), frame5(v5(true, 1, opResult, void), true)), uint8(0))
	f.Add(cat(req(1, opQuery, query("SELECT a", []byte{1})), req(2, opBatch, b(nil).raw(0).short(1).raw(1).short(1).raw(7).short(0).short(1).raw(0))),
		cat(resp(2, opResult, void), resp(1, opResult, b(nil).int(2).int(1).int(1).str("k").str("t").str("c").short(tList).short(tMap).short(tInt).short(tUDT).int(0))), uint8(9))
	target.Fuzz(f, func(t *testing.T, s *dbtest.Side) {
		cfg := dbtest.FuzzConfig
		c := s.Parser.(*conn)
		keep := max(cfg.MaxHeaderBytes, 1024)
		if c.Pending() != 0 || len(c.orphans) != 0 || cap(c.req.env.body) > 2*keep || cap(c.resp.env.body) > 2*keep {
			t.Fatalf("not bounded: pending %d orphans %d bodies %d %d", c.Pending(), len(c.orphans), cap(c.req.env.body), cap(c.resp.env.body))
		}
		for _, r := range s.Rows() {
			for _, col := range []string{"req_body", "resp_body"} {
				if n := len(r[col].(string)); n > cfg.MaxHeaderBytes {
					t.Fatalf("%s of %d bytes", col, n)
				}
			}
		}
	})
}
