// Package dbtrace runs the database protocols' real clients under the
// socket tracer, for their traffic tests (traffic_test.go, in the
// external test packages). It is apart from dbtest, which the protocols'
// own tests import, because the tracer imports the protocols.
package dbtrace

import (
	"errors"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/table"
)

// Want says which rows a traced run waits for: N rows of Table, of the
// traced side of the connections to Port, that Keep selects (all when
// Keep is nil). A run waits at most 5 s for them.
type Want struct {
	Table   string
	Port, N int
	Keep    func(map[string]any) bool
}

// Traced is what a run of clients under the tracer gave.
type Traced struct {
	Tracer *ebpf.Tracer
	Rows   []map[string]any // the rows Want selects, in order
	Out    string           // what the clients printed
	Err    error            // how they ended
}

// Side is which ends of the clients' connections a run traces.
type Side int

const (
	// Both traces every process (a client's pid is not known before it
	// starts, and a server may run a process per connection). Both ends
	// are traced, so each request is one row, the server's: the rows are
	// the server's, and a row of another side fails the test.
	Both Side = iota
	// Client traces the clients alone (the server is not traced, as a
	// managed database would not be): the rows are their side's.
	Client
)

func (s Side) String() string {
	if s == Client {
		return "client"
	}
	return "server"
}

// Run runs the held clients one after the other under a tracer of side.
func Run(t *testing.T, w Want, side Side, clients ...*dbtest.Held) Traced {
	t.Helper()
	cfg := ebpf.Config{OnlyPIDs: []uint32{}}
	rows := ebpftest.ServerRow(w.Port)
	if side == Client {
		for _, c := range clients {
			cfg.OnlyPIDs = append(cfg.OnlyPIDs, uint32(c.Pid))
		}
		rows = ebpftest.ClientRow(w.Port)
	}
	tr, store := ebpftest.Tracer(t, cfg)
	r := Traced{Tracer: tr}
	for _, c := range clients {
		out, err := c.Run()
		r.Out, r.Err = r.Out+out, errors.Join(r.Err, err)
	}
	r.Rows = w.wait(t, store, rows)
	if side == Both {
		if n := len(ebpftest.WaitRows(t, store, w.Table, 0, 0, func(r map[string]any) bool { return !rows(r) })); n != 0 {
			t.Errorf("%d rows besides the server's", n)
		}
	}
	return r
}

// wait waits for the rows of w on the side side selects.
func (w Want) wait(t *testing.T, store *table.Store, side func(map[string]any) bool) []map[string]any {
	t.Helper()
	keep := func(r map[string]any) bool { return side(r) && (w.Keep == nil || w.Keep(r)) }
	return ebpftest.WaitRows(t, store, w.Table, w.N, 5*time.Second, keep)
}
