package realclient

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/cql"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

var target = dbtest.Target{Protocol: cql.Protocol{}, Port: 9042}

// want is a row: its opcodes and bodies.
type want struct {
	ReqOp    int64
	ReqBody  string
	RespOp   int64
	RespBody string
}

func rowOf(r map[string]any, _ want) want {
	return want{r["req_op"].(int64), r["req_body"].(string), r["resp_op"].(int64), r["resp_body"].(string)}
}

func jsonList(s ...string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ",") + "]"
}

func rowsResult(names []string, n int) string {
	return fmt.Sprintf("Response type = ROWS\nNumber of columns = %d\n%s\nNumber of rows = %d", len(names), jsonList(names...), n)
}

func colNames(cols []col) []string {
	var n []string
	for _, c := range cols {
		n = append(n, c.name)
	}
	return n
}

func id(q string) string { return "0x" + hex.EncodeToString(preparedID(q)) }

// What gocql does on each of its two connections, and the rows that
// makes: the control connection asks for the supported options, starts,
// registers for events, reads system.local twice (the connection's
// host, then the ring) and system.peers, and gets the responder's
// schema change event; the query connection runs the session.
func wants() (control, queries []want) {
	const (
		options = `{"COMPRESSION":[],"CQL_VERSION":["3.4.4"]}`
		startup = `{"CQL_VERSION":"3.0.0","DRIVER_NAME":"","DRIVER_VERSION":""}`
		one     = "\nconsistency=ONE"
		quorum  = "\nconsistency=QUORUM"
		void    = "Response type = VOID"
	)
	local := want{7, qLocal + one, 8, rowsResult(colNames(localCols), 1)}
	peers := want{7, qPeers + one, 8, rowsResult(colNames(peerCols), 0)}
	hello := []want{{5, "", 6, options}, {1, startup, 2, ""}}
	control = append(hello,
		local,
		want{11, jsonList("TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"), 2, ""},
		local, peers,
		want{11, "-", 12, "SCHEMA_CHANGE CREATED TABLE keyspace=ks name=users"},
	)
	queries = append(hello,
		want{7, qCreate + quorum, 8, "Response type = SCHEMA_CHANGE\nCREATED TABLE keyspace=ks name=users"},
		// gocql waits for the schema to agree.
		peers,
		want{7, qSchema + one, 8, rowsResult([]string{"schema_version"}, 1)},
		want{9, qInsert, 8, "Response type = PREPARED\nPrepared id = " + id(qInsert)},
	)
	for _, u := range users[:2] {
		queries = append(queries, want{10, fmt.Sprintf("%s\n[%q,%q,%d]%s", qInsert, u.id, u.name, u.age, quorum), 8, void})
	}
	var batch []string
	for _, u := range users[2:] {
		batch = append(batch, fmt.Sprintf(`{"id":%q,"query":%q,"values":[%q,%q,%d]}`, id(qInsert), qInsert, u.id, u.name, u.age))
	}
	queries = append(queries,
		want{13, `{"type":"LOGGED","queries":[` + strings.Join(batch, ",") + `],"consistency":"QUORUM"}`, 8, void},
		want{9, qSelectOne, 8, "Response type = PREPARED\nPrepared id = " + id(qSelectOne)},
		want{10, fmt.Sprintf("%s\n[%q]%s", qSelectOne, users[1].id, quorum), 8, rowsResult(colNames(preparable[1].results), 1)},
		want{9, qSelectAll, 8, "Response type = PREPARED\nPrepared id = " + id(qSelectAll)},
		want{10, qSelectAll + quorum, 8, rowsResult(colNames(preparable[2].results), len(users))},
		want{9, qMissing, 0, "[8704] " + errUnconf},
	)
	return control, queries
}

// instant selects the rows that have no latency: EVENTs.
func instant(r map[string]any) bool { return r["resp_op"] == int64(12) }

// TestGocqlProxied runs the session through a recording proxy and parses
// what gocql and the responder exchanged as the tracer would on each
// side: every row, on each side, is checked.
func TestGocqlProxied(t *testing.T) {
	srv := startResponder(t)
	control, queries := wants()
	for _, proto := range []int{3, 4} {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			live := target.Live(t)
			p := dbtest.NewProxy(t, srv.Addr, live.Feed)
			session(t, p.Addr(), proto)
			p.Close()
			if os.Getenv("PXQ_RECORD") == "1" {
				for conn, name := range []string{"control", "queries"} {
					dbtest.Record(t, fmt.Sprintf("../testdata/gocql-v%d-%s.bin", proto, name), live.Chunks, conn)
					saveWants(t, fmt.Sprintf("../testdata/gocql-v%d-%s.rows.json", proto, name), [][]want{control, queries}[conn])
				}
			}
			client, server := live.ConnRows()
			for side, conns := range [][][]map[string]any{client, server} {
				if len(conns) != 2 {
					t.Fatalf("side %d: %d connections, want 2", side+1, len(conns))
				}
				dbtest.CheckRows(t, conns[0], control, rowOf)
				dbtest.CheckRows(t, conns[1], queries, rowOf)
			}
			live.CheckSides(t, func([]map[string]any) {}, instant)
			for side := range 2 {
				for _, c := range []string{"parse_errors", "decode_errors", "gap_resyncs", "unmatched_responses", "requests_lost", "closed_before_response", "incomplete_at_close", "damaged_messages"} {
					if n := live.Count(side, c); n != 0 {
						t.Errorf("side %d: %s = %d", side+1, c, n)
					}
				}
			}
		})
	}
}

// byConn groups rows by the client's port (remote_port on the server's
// side, local_port on the client's), groups in the order they began.
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
		sort.SliceStable(g, func(i, j int) bool { return g[i]["time_"].(int64) < g[j]["time_"].(int64) })
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0]["time_"].(int64) < out[j][0]["time_"].(int64) })
	return out
}

// saveWants writes the rows a recorded connection should make, for the
// cql package's replay test.
func saveWants(t *testing.T, path string, w []want) {
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
