package realclient

import (
	"os"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mongodb"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// TestFerretDB runs the session through a recording proxy and parses
// what the driver and FerretDB exchanged as the tracer would on each
// side of each connection.
func TestFerretDB(t *testing.T) {
	s := startFerretDB(t)
	live := dbtest.Target{Protocol: mongodb.Protocol{}, Port: uint16(s.Port)}.Live(t)
	p := dbtest.NewProxy(t, s.addr(), live.Feed)
	wants := session(t, p.Addr(), "pxq")
	p.Close()
	client, server := live.ConnRows()
	for side, conns := range [][][]map[string]any{client, server} {
		t.Run([]string{"client", "server"}[side], func(t *testing.T) {
			app := checkConns(t, conns, wants)
			if side == 0 {
				dbtest.Record(t, "../testdata/session.bin", live.Chunks, app)
			}
		})
	}
	live.Zero(t, "parse_errors", "unmatched_responses", "not_parsed", "gap_resyncs", "closed_before_response", "incomplete_at_close")
	live.CheckSides(t, func([]map[string]any) {}, nil)
}

// TestFerretDBHello is TestFerretDB for a client of the stable API,
// whose handshake is an OP_MSG hello.
func TestFerretDBHello(t *testing.T) {
	s := startFerretDB(t)
	live := dbtest.Target{Protocol: mongodb.Protocol{}, Port: uint16(s.Port)}.Live(t)
	p := dbtest.NewProxy(t, s.addr(), live.Feed)
	wants := apiSession(t, p.Addr())
	p.Close()
	client, server := live.ConnRows()
	for side, conns := range [][][]map[string]any{client, server} {
		t.Run([]string{"client", "server"}[side], func(t *testing.T) { checkConnsWith(t, conns, wants, helloHandshake) })
	}
	live.Zero(t, "parse_errors", "unmatched_responses", "not_parsed", "gap_resyncs", "closed_before_response", "incomplete_at_close")
	live.CheckSides(t, func([]map[string]any) {}, nil)
}

// checkConns checks the rows of each connection: the one that ran the
// session's commands (whose index it returns) against wants, every
// other (the driver's monitor) has its handshake alone.
func checkConns(t *testing.T, conns [][]map[string]any, wants []want) int {
	t.Helper()
	return checkConnsWith(t, conns, wants, handshake)
}

// checkConnsWith is checkConns for a client whose monitor shakes hands
// with hs.
func checkConnsWith(t *testing.T, conns [][]map[string]any, wants []want, hs want) int {
	t.Helper()
	app := -1
	for i, rows := range conns {
		if len(rows) > 1 {
			if app >= 0 {
				t.Errorf("connections %d and %d both ran commands", app, i)
			}
			app = i
			checkRows(t, rows, wants)
		} else {
			checkRows(t, rows, []want{hs})
		}
	}
	if app < 0 || len(conns) != 2 {
		t.Fatalf("%d connections, the session's %d; want the session's and the monitor's", len(conns), app)
	}
	return app
}

// checkRows checks rows against wants, in order.
func checkRows(t *testing.T, rows []map[string]any, wants []want) {
	t.Helper()
	if len(rows) != len(wants) {
		for i, r := range rows {
			t.Logf("row %d: %v %v %.200v", i, r["req_cmd"], r["resp_status"], r["req_body"])
		}
		t.Fatalf("%d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		r := rows[i]
		if r["req_cmd"] != w.cmd || r["resp_status"] != w.status {
			t.Errorf("row %d: req_cmd %q resp_status %q, want %q %q", i, r["req_cmd"], r["resp_status"], w.cmd, w.status)
		}
		for _, c := range []struct{ col, re string }{{"req_body", w.req}, {"resp_body", w.resp}} {
			if s, _ := r[c.col].(string); !regexp.MustCompile(`^` + c.re + `$`).MatchString(s) {
				t.Errorf("row %d (%s): %s\n %s\ndoes not match\n %s", i, w.cmd, c.col, s, c.re)
			}
		}
	}
}

// sides are the ends a traced run sees: the client's alone (this
// process), or every process (FerretDB's too, whose rows are then the
// only ones: a command is one row, the server's).
var sides = []struct {
	name string
	all  bool
}{{"client", false}, {"both", true}}

// TestTraceFerretDB runs the session, then a client that inserts and
// reads back a document larger than the tracer copies of a call, under
// the socket tracer, tracing the driver's process alone and then both
// processes, and checks every row of the connections to FerretDB, field
// by field.
func TestTraceFerretDB(t *testing.T) {
	s := startFerretDB(t)
	for _, side := range sides {
		t.Run(side.name, func(t *testing.T) {
			cfg := ebpf.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10}
			rows := ebpftest.ClientRow(s.Port)
			if side.all {
				cfg.OnlyPIDs = []uint32{}
				rows = ebpftest.ServerRow(s.Port)
			}
			tr, store := ebpftest.Tracer(t, cfg)
			begin := time.Now().UnixNano()
			wants := session(t, s.addr(), "pxq_"+side.name)
			got := settled(t, store, rows, len(wants)+1)
			conns := byConn(got, !side.all)
			checkConns(t, conns, wants)
			// A client of its own for the large document, whose rows come
			// after the first session's.
			wantsBig := bigSession(t, s.addr(), "pxq_big_"+side.name)
			all := settled(t, store, rows, len(got)+len(wantsBig)+1)
			big := all[len(got):]
			checkConns(t, byConn(big, !side.all), wantsBig)
			for i, r := range big {
				if n := len(r["req_body"].(string)); n > cfg.MaxHeaderBytes {
					t.Errorf("row %d: req_body of %d bytes", i, n)
				}
				if n := len(r["resp_body"].(string)); n > cfg.MaxBodyBytes {
					t.Errorf("row %d: resp_body of %d bytes", i, n)
				}
			}
			got = all
			pid := uint32(os.Getpid())
			if side.all {
				pid = uint32(s.Pid)
			}
			for i, r := range got {
				checkConnColumns(t, i, r, side.all, s.Port, pid, begin)
			}
			if side.all {
				if n := len(ebpftest.WaitRows(t, store, mongodb.Table.Name(), 0, 0, func(r map[string]any) bool { return ebpftest.ClientRow(s.Port)(r) })); n != 0 {
					t.Errorf("%d rows of the client's side too", n)
				}
			}
			st := tr.Stats()
			if st.TruncatedBytes == 0 {
				t.Error("no bytes past the 64 KiB of a call: the large document did not test the bound")
			}
			t.Logf("%d bytes not copied", st.TruncatedBytes)
			for _, c := range []string{"mongodb.parse_errors", "mongodb.unmatched_responses", "mongodb.not_parsed", "mongodb.gap_resyncs"} {
				if st.Counters[c] != 0 {
					t.Errorf("%s = %d", c, st.Counters[c])
				}
			}
			if st.LostEvents != 0 {
				t.Errorf("%d events lost", st.LostEvents)
			}
		})
	}
}

// checkConnColumns checks the columns of row i that say where and when:
// 127.0.0.1 on both ends, the server's port on its side, the traced
// process, not encrypted, a latency, a time after the session began.
func checkConnColumns(t *testing.T, i int, r map[string]any, server bool, port int, pid uint32, begin int64) {
	t.Helper()
	role, portCol := int64(1), "remote_port"
	if server {
		role, portCol = 2, "local_port"
	}
	if r["remote_addr"] != "127.0.0.1" || r["local_addr"] != "127.0.0.1" || r[portCol] != int64(port) ||
		r["trace_role"] != role || r["encrypted"] != false {
		t.Errorf("row %d: %v", i, r)
	}
	if p := r["upid"].(types.UInt128Value).PID(); p != pid {
		t.Errorf("row %d (%v): pid %d, want %d", i, r["req_cmd"], p, pid)
	}
	if lat := r["latency"].(int64); lat <= 0 || lat > int64(5*time.Second) {
		t.Errorf("row %d (%v): latency %d", i, r["req_cmd"], lat)
	}
	if ts := r["time_"].(int64); ts < begin || ts > time.Now().UnixNano() {
		t.Errorf("row %d (%v): time %d, session began at %d", i, r["req_cmd"], ts, begin)
	}
}

// settled waits for at least n rows that keep selects, then for them to
// stop coming.
func settled(t *testing.T, store *table.Store, keep func(map[string]any) bool, n int) []map[string]any {
	t.Helper()
	rows := ebpftest.WaitRows(t, store, mongodb.Table.Name(), n, 5*time.Second, keep)
	for {
		time.Sleep(300 * time.Millisecond)
		more := ebpftest.WaitRows(t, store, mongodb.Table.Name(), 0, 0, keep)
		if len(more) == len(rows) {
			return rows
		}
		rows = more
	}
}

// byConn groups rows by the client's port (local_port on the client's
// side, remote_port on the server's), in the order the groups began.
func byConn(rows []map[string]any, clientSide bool) [][]map[string]any {
	key := "remote_port"
	if clientSide {
		key = "local_port"
	}
	groups := map[int64][]map[string]any{}
	for _, r := range rows {
		groups[r[key].(int64)] = append(groups[r[key].(int64)], r)
	}
	var out [][]map[string]any
	for _, g := range groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0]["time_"].(int64) < out[j][0]["time_"].(int64) })
	return out
}
