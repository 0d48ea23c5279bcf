package http

import (
	"math/rand"
	"testing"

	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// The typed row path (Env.Rows, table.Writer.AppendValues) writes the same
// table as the boxed one (Env.Emit, table.Writer.AppendRow).
func TestRowsMatchEmit(t *testing.T) {
	store := table.NewStore(0)
	mk := func(name string) *table.Writer {
		tb, err := store.Create(name, schema.HTTPEvents.Relation, table.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return table.NewWriter(tb)
	}
	boxed, typed := mk("boxed"), mk("typed")
	run := func(env protocols.Env) {
		rnd := rand.New(rand.NewSource(1))
		h := newHarness(protocols.RoleClient, 8)
		h.c.env.Emit, h.c.env.Rows = env.Emit, env.Rows
		h.c.env.Conn.UPID = types.UInt128Value{High: 1<<40 | 7, Low: 123456789}
		for i := 0; i < 3; i++ {
			h.send(protocols.Egress, get1, rnd)
			h.send(protocols.Ingress, resp1, rnd)
			h.send(protocols.Egress, post1, rnd)
			h.send(protocols.Ingress, resp2, rnd)
			h.send(protocols.Egress, get1, rnd)
			h.send(protocols.Ingress, chunk1, rnd)
		}
	}
	run(protocols.Env{Emit: func(_ string, vals ...any) {
		if err := boxed.AppendRow(vals...); err != nil {
			t.Fatal(err)
		}
	}})
	rows := &protocols.Rows{Emit: func(_ string, vals []table.Value) {
		if err := typed.AppendValues(vals); err != nil {
			t.Fatal(err)
		}
	}}
	run(protocols.Env{Rows: rows})
	boxed.Flush()
	typed.Flush()
	b, ty := store.Table("boxed").Snapshot(0, 0), store.Table("typed").Snapshot(0, 0)
	if len(b) != 1 || len(ty) != 1 || b[0].Record.NumRows() != 9 {
		t.Fatalf("batches %d and %d", len(b), len(ty))
	}
	for i := range schema.HTTPEvents.Relation {
		x, y := b[0].Record.Column(i), ty[0].Record.Column(i)
		for r := 0; r < x.Len(); r++ {
			if x.ValueStr(r) != y.ValueStr(r) {
				t.Errorf("column %s row %d: %q (Emit) != %q (Rows)", schema.HTTPEvents.Relation[i].Name, r, x.ValueStr(r), y.ValueStr(r))
			}
		}
	}
}
