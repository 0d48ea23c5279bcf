package realclient

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/cql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// checkTraced checks the rows a tracer wrote on one side of the
// sessions: per protocol version, the control connection's and the
// query connection's rows, in order.
func checkTraced(t *testing.T, side string, got []map[string]any) {
	t.Helper()
	control, queries := wants()
	conns := byConn(got, side == "client")
	if len(conns) != 4 {
		for i, c := range conns {
			for _, r := range c {
				t.Logf("%s conn %d: %#v", side, i, rowOf(r, want{}))
			}
		}
		t.Fatalf("%s: rows of %d connections, want 4 (2 per session)", side, len(conns))
	}
	for i, c := range conns {
		w := control
		if i%2 == 1 {
			w = queries
		}
		t.Run(fmt.Sprintf("%s/conn%d", side, i), func(t *testing.T) {
			dbtest.CheckRows(t, c, w, rowOf)
			dbtest.CheckLatency(t, side, c, 5*time.Second, instant)
			for _, r := range c {
				if want := map[string]int64{"client": 1, "server": 2}[side]; r["trace_role"] != want {
					t.Errorf("trace_role %v, want %d", r["trace_role"], want)
				}
			}
		})
	}
}

func runSessions(t *testing.T, srv *server) int {
	for _, proto := range []int{3, 4} {
		session(t, srv.Addr, proto)
	}
	control, queries := wants()
	return 2 * (len(control) + len(queries))
}

// TestTraceGocqlBothSides traces the responder and gocql (this process),
// recording both sides: every request is a row on each.
func TestTraceGocqlBothSides(t *testing.T) {
	srv := startResponder(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(srv.Pid), uint32(os.Getpid())}, AllClientSides: true})
	n := runSessions(t, srv)
	for _, side := range []struct {
		name string
		keep func(map[string]any) bool
	}{{"client", ebpftest.ClientRow(srv.Port)}, {"server", ebpftest.ServerRow(srv.Port)}} {
		checkTraced(t, side.name, ebpftest.WaitRows(t, store, cql.Table.Name(), n, 5*time.Second, side.keep))
	}
}

// TestTraceGocqlServerSide traces both ends with the default
// configuration: the server's rows are kept, the client's left out.
func TestTraceGocqlServerSide(t *testing.T) {
	srv := startResponder(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(srv.Pid), uint32(os.Getpid())}})
	n := runSessions(t, srv)
	checkTraced(t, "server", ebpftest.WaitRows(t, store, cql.Table.Name(), n, 5*time.Second, ebpftest.ServerRow(srv.Port)))
	if k := len(ebpftest.WaitRows(t, store, cql.Table.Name(), 0, 0, ebpftest.ClientRow(srv.Port))); k != 0 {
		t.Errorf("%d client rows, want none (the server is traced)", k)
	}
}

// TestTraceGocqlClientSide traces the client alone (the server is not
// traced, as a managed database would not be).
func TestTraceGocqlClientSide(t *testing.T) {
	srv := startResponder(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(os.Getpid())}})
	n := runSessions(t, srv)
	checkTraced(t, "client", ebpftest.WaitRows(t, store, cql.Table.Name(), n, 5*time.Second, ebpftest.ClientRow(srv.Port)))
}

// pipelined sends n requests at once from gocql on one connection (v4)
// to the responder at addr, which answers each after a random delay, so
// the answers come out of order: the request for k rows gets k rows.
// coalesce leaves gocql's write coalescing on (its default: the
// requests that wait together go in one writev).
func pipelined(t *testing.T, addr string, n int, coalesce bool) {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	cluster := gocql.NewCluster(host)
	cluster.Port, cluster.ProtoVersion, cluster.NumConns = port, 4, 1
	cluster.Timeout = 10 * time.Second
	if !coalesce {
		cluster.WriteCoalesceWaitTime = 0
	}
	s, err := cluster.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iter := s.Query(qSeries, i).Iter()
			got := iter.NumRows()
			if err := iter.Close(); err != nil || got != i {
				errs <- fmt.Errorf("query %d: %d rows, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// executeSize measures the bytes of one pipelined request (an EXECUTE
// of qSeries; every one has the same size) through a recording proxy.
func executeSize(t *testing.T, srv *server) int {
	var sent [][]byte
	p := dbtest.NewProxy(t, srv.Addr, func(c dbtest.Chunk) {
		if c.ToServer {
			sent = append(sent, c.Data)
		}
	})
	pipelined(t, p.Addr(), 1, false)
	p.Close()
	id := preparedID(qSeries)
	for _, b := range sent {
		if len(b) > 9+2+len(id) && b[4] == 0x0a && bytes.Equal(b[11:11+len(id)], id) {
			return 9 + int(binary.BigEndian.Uint32(b[5:9]))
		}
	}
	t.Fatal("no EXECUTE recorded")
	return 0
}

// TestTraceGocqlPipelined traces both ends while gocql sends 200
// requests at once on one connection, answered out of order: each row
// must pair a request with its own answer (a request for k rows, a
// result of k rows). Two shapes:
//
//   - one write per request: every request is a row on each side.
//   - coalesced (gocql's default): gocql writes the requests waiting
//     together with one writev of many buffers, past the 8 iovecs the
//     tracer copies of a call (truncated_bytes): on the client's side
//     the requests in the bytes not copied are lost. Every row that
//     lands must be right, and the rows missing must be what was not
//     copied; the server's side (it reads with large reads) has them
//     all.
func TestTraceGocqlPipelined(t *testing.T) {
	srv := startResponder(t)
	size := executeSize(t, srv)
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(srv.Pid), uint32(os.Getpid())}, AllClientSides: true})
	const n = 200
	for _, shape := range []struct {
		name     string
		coalesce bool
	}{{"one_write_each", false}, {"coalesced", true}} {
		t.Run(shape.name, func(t *testing.T) {
			before := tr.Stats()
			start := time.Now().UnixNano()
			pipelined(t, srv.Addr, n, shape.coalesce)
			after := settle(tr)
			truncated := int64(after.TruncatedBytes - before.TruncatedBytes)
			for _, side := range []struct {
				name string
				keep func(map[string]any) bool
			}{{"client", ebpftest.ClientRow(srv.Port)}, {"server", ebpftest.ServerRow(srv.Port)}} {
				wait := 10 * time.Second
				if side.name == "client" && truncated > 0 {
					wait = time.Second // rows are missing: wait for the flush only
				}
				rows := ebpftest.WaitRows(t, store, cql.Table.Name(), n, wait, func(r map[string]any) bool {
					return side.keep(r) && r["req_op"] == int64(10) && r["time_"].(int64) > start
				})
				seen := map[int]bool{}
				outOfOrder, last := 0, -1
				for _, r := range rows {
					var k int
					if _, err := fmt.Sscanf(r["req_body"].(string), qSeries+"\n[%d]\nconsistency=QUORUM", &k); err != nil {
						t.Fatalf("%s: req_body %q: %v", side.name, r["req_body"], err)
					}
					if want := rowsResult([]string{"v"}, k); r["resp_body"] != want || r["resp_op"] != int64(8) {
						t.Errorf("%s: the request for %d rows answered %q", side.name, k, r["resp_body"])
					}
					if seen[k] {
						t.Errorf("%s: two rows for %d", side.name, k)
					}
					seen[k] = true
					if k < last {
						outOfOrder++
					}
					last = k
				}
				dbtest.CheckLatency(t, side.name, rows, 10*time.Second, nil)
				t.Logf("%s: %d rows for %d requests, %d answered after a later one's", side.name, len(rows), n, outOfOrder)
				if side.name == "server" || truncated == 0 {
					if len(rows) != n {
						t.Errorf("%s: %d rows, want %d", side.name, len(rows), n)
					}
					continue
				}
				lost := int64(n-len(rows)) * int64(size)
				gaps := after.Counters["cql.gap_resyncs"] - before.Counters["cql.gap_resyncs"]
				t.Logf("client: truncated %d bytes, %d gaps; the rows missing are %d bytes (%d each)", truncated, gaps, lost, size)
				// A gap also costs the request it cuts, and the parser
				// resumes only at a segment that starts an envelope.
				if slack := (gaps + 1) * 2 * int64(size); lost < truncated-slack || lost > truncated+slack {
					t.Errorf("client: rows of %d bytes missing for %d bytes truncated", lost, truncated)
				}
			}
			if !shape.coalesce && truncated != 0 {
				t.Errorf("%d bytes truncated with one write per request", truncated)
			}
		})
	}
}

// settle waits until the tracer has read and parsed what the traffic so
// far made (its counts of events and rows stop changing over 200 ms, or
// 10 s pass), and returns its counters then.
func settle(tr *ebpf.Tracer) ebpf.Stats {
	last := tr.Stats()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		st := tr.Stats()
		if st.Events == last.Events && st.Rows == last.Rows {
			return st
		}
		last = st
	}
	return last
}
