package mongodb

import (
	"encoding/json"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// FuzzMongoDBParser feeds arbitrary client and server bytes, in pieces
// and with gaps, to the parser on both sides: it must not panic, must
// keep its buffers and its requests bounded, and every row's bodies must
// be JSON within the configured bounds.
func FuzzMongoDBParser(f *testing.F) {
	dbtest.AddRecordings(f, 3, "session")
	f.Add(opMsgBytes(1, 0, flagChecksum, d{{"insert", "c"}, {"$db", "x"}}, seq{"documents", []d{{{"a", 1}}}}),
		opMsgBytes(2, 1, flagMoreToCome, d{{"n", 1}, {"ok", 1.0}}), uint8(0))
	f.Add(opQueryBytes(1, "admin.$cmd", d{{"isMaster", 1}}), opReplyBytes(2, 1, d{{"ok", 1.0}}, d{{"x", arr{1, "y"}}}), uint8(211))
	target.Fuzz(f, func(t *testing.T, s *dbtest.Side) {
		cfg := dbtest.FuzzConfig
		c := s.Parser.(*conn)
		if cap(c.client.m.body) > 2*cfg.MaxHeaderBytes || cap(c.server.m.body) > 2*cfg.MaxBodyBytes || c.Pending() != 0 {
			t.Fatalf("not bounded: bodies %d %d, pending %d", cap(c.client.m.body), cap(c.server.m.body), c.Pending())
		}
		for _, r := range s.Rows() {
			req, resp := r["req_body"].(string), r["resp_body"].(string)
			if len(req) > cfg.MaxHeaderBytes || len(resp) > cfg.MaxBodyBytes || len(r["req_cmd"].(string)) > 64 {
				t.Fatalf("row not bounded: req %d resp %d bytes", len(req), len(resp))
			}
			if !json.Valid([]byte(req)) || (resp != "" && !json.Valid([]byte(resp))) {
				t.Fatalf("not JSON: %q %q", req, resp)
			}
		}
	})
}

// FuzzBSON checks the decoder alone on arbitrary bytes and budgets: it
// must not panic, and its text must be JSON within the budget.
func FuzzBSON(f *testing.F) {
	f.Add(d{{"a", 1}, {"b", d{{"c", "x"}}}, {"d", arr{1.5, nil, true}}}.bson(), uint16(100))
	f.Fuzz(func(t *testing.T, b []byte, max uint16) {
		n := int(max%2048) + 20
		out, _ := AppendJSON(nil, b, n)
		if len(out) > n || !json.Valid(out) {
			t.Fatalf("budget %d: %d bytes: %q", n, len(out), out)
		}
	})
}
