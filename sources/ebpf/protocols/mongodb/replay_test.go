package mongodb

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/table"
)

// TestReplay parses the recorded session of the mongo-go-driver with
// FerretDB (realclient, PXQ_RECORD=1), as read and cut in pieces of any
// size, on both sides: the handshake and every command, each with its
// reply, no counter moved. realclient checks the same rows' bodies
// whole; here each must be JSON that begins with its command.
func TestReplay(t *testing.T) {
	want := []struct{ cmd, status string }{
		{"isMaster", "ok: 1"}, {"insert", "ok: 1"}, {"find", "cursor"}, {"getMore", "cursor"}, {"getMore", "cursor"},
		{"update", "ok: 1"}, {"delete", "ok: 1"}, {"aggregate", "cursor"}, {"insert", "ok: 1"},
		{"nosuchcmd", "ok: 0"}, {"endSessions", "ok: 0"},
	}
	chunks := dbtest.Replay(t, "testdata/session.bin")
	target.CheckReplay(t, "session", chunks, []int{0, 1, 3, 16, 100}, func(rows []map[string]any) {
		if len(rows) != len(want) {
			t.Fatalf("%d rows, want %d", len(rows), len(want))
		}
		for i, w := range want {
			r := asRow(rows[i], row{})
			if r.cmd != w.cmd || r.status != w.status || !strings.HasPrefix(r.req, `{"`+w.cmd+`":`) ||
				!json.Valid([]byte(r.req)) || !json.Valid([]byte(r.resp)) {
				t.Errorf("row %d: %+v, want %v", i, r, w)
			}
		}
	})
}

// BenchmarkParser parses the recorded session on the client's side,
// one connection per iteration, its rows written to a real table; bytes
// are both directions'.
func BenchmarkParser(b *testing.B) {
	chunks := dbtest.Replay(b, "testdata/session.bin")
	n := 0
	for _, c := range chunks {
		n += len(c.Data)
	}
	w, err := Table.Create(table.NewStore(0))
	if err != nil {
		b.Fatal(err)
	}
	env := protocols.Env{
		Conn: &protocols.Conn{Role: protocols.RoleClient, Stream: true}, Cfg: dbtest.Config,
		Row: func(*table.Decl) *table.Row { return w.Row() }, Count: func(string, int64) {},
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		p := Protocol{}.NewParser(env)
		for _, c := range chunks {
			p.Data(dbtest.Segment(c, protocols.RoleClient))
		}
		p.Close(0)
	}
}
