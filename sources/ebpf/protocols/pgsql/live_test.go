package pgsql

import (
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

// live parses the connections through a dbtest.Proxy as the tracer
// would on each side: one parser as the client, one as the server.
type live struct {
	t      *testing.T
	conns  map[int]*[2]*protocoltest.Harness
	chunks []dbtest.Chunk
}

func newLive(t *testing.T) *live { return &live{t: t, conns: map[int]*[2]*protocoltest.Harness{}} }

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

func (l *live) feed(c dbtest.Chunk) {
	l.chunks = append(l.chunks, c)
	h := l.conns[c.Conn]
	if h == nil {
		h = &[2]*protocoltest.Harness{}
		for i, role := range roles {
			h[i] = protocoltest.New(l.t, Protocol{}, protocols.Conn{
				Role: role, Stream: true,
				Local: netip.MustParseAddrPort("127.0.0.1:5432"), Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
			}, testConfig)
		}
		l.conns[c.Conn] = h
	}
	for i, role := range roles {
		h[i].Parser.Data(dbtest.Segment(c, role))
	}
}

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// rows closes every connection's parsers and returns the rows of each
// side, connections in order.
func (l *live) rows() (client, server []map[string]any) {
	ids := make([]int, 0, len(l.conns))
	for id := range l.conns {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		h := l.conns[id]
		for _, x := range h {
			x.Parser.Close(time.Now().UnixNano())
		}
		client = append(client, h[0].Rows(Table.Name())...)
		server = append(server, h[1].Rows(Table.Name())...)
	}
	return client, server
}

// counts sums a counter over the connections' parsers of one side.
func (l *live) counts(side int, name string) int64 {
	var n int64
	for _, h := range l.conns {
		n += h[side].Counts[name]
	}
	return n
}

type want struct{ cmd, req, resp string }

// checkRows checks the rows of both sides against want, field by field.
func checkRows(t *testing.T, client, server []map[string]any, wants []want) {
	t.Helper()
	for side, rows := range [][]map[string]any{client, server} {
		if len(rows) != len(wants) {
			for _, r := range rows {
				t.Logf("row %q %q %q", r["req_cmd"], r["req"], r["resp"])
			}
			t.Fatalf("side %d: %d rows, want %d", side+1, len(rows), len(wants))
		}
		for i, w := range wants {
			r := rows[i]
			if r["req_cmd"] != w.cmd || r["req"] != w.req || r["resp"] != w.resp {
				t.Errorf("side %d row %d:\n got %q %q %q\nwant %q %q %q", side+1, i, r["req_cmd"], r["req"], r["resp"], w.cmd, w.req, w.resp)
			}
			if r["trace_role"] != int64(side+1) {
				t.Errorf("side %d row %d: trace_role %v", side+1, i, r["trace_role"])
			}
			if lat := r["latency"].(int64); lat <= 0 || lat > int64(10*time.Second) {
				t.Errorf("side %d row %d: latency %d", side+1, i, lat)
			}
		}
	}
}

func psql(t *testing.T, port int, stdin string, args ...string) string {
	t.Helper()
	bin := dbtest.Need(t, "psql", dbtest.PostgresBin()...)
	cmd := exec.Command(bin, append([]string{"-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "pxq", "-d", "postgres", "-v", "ON_ERROR_STOP=0"}, args...)...)
	cmd.Env = append(cmd.Environ(), "PGPASSWORD="+dbtest.PostgresPassword, "PGSSLMODE=disable")
	cmd.Stdin = strings.NewReader(stdin)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// TestPsql runs psql against a real server: simple queries, several
// statements in one Query, an error, COPY in and out, and an SSLRequest
// refused.
func TestPsql(t *testing.T) {
	s := dbtest.StartPostgres(t)
	l := newLive(t)
	p := dbtest.NewProxy(t, s.Addr(), l.feed)
	out := psql(t, p.Port, "",
		"-c", "create table t(id int primary key, name text)",
		"-c", "insert into t values (1,'a'),(2,null)",
		"-c", "select * from t order by id; select count(*) from t",
		"-c", "select * from nope",
		"-c", "update t set name = 'b' where id = 2")
	if !strings.Contains(out, `relation "nope" does not exist`) {
		t.Fatalf("psql: %s", out)
	}
	out = psql(t, p.Port, "3\tc\n4\td\n\\.\n", "-c", "copy t from stdin")
	out += psql(t, p.Port, "", "-c", "copy t to stdout")
	if !strings.Contains(out, "4\td") {
		t.Fatalf("psql copy: %s", out)
	}
	// sslmode=prefer: the server refuses SSL ('N'), psql goes on in
	// plaintext.
	cmd := exec.Command(dbtest.Need(t, "psql", dbtest.PostgresBin()...), "-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "pxq", "-d", "postgres", "-c", "select 42")
	cmd.Env = append(cmd.Environ(), "PGPASSWORD="+dbtest.PostgresPassword, "PGSSLMODE=prefer")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "42") {
		t.Fatalf("psql sslmode=prefer: %v %s", err, b)
	}
	p.Close()
	dbtest.Record(t, "testdata/psql.bin", l.chunks, 0)
	dbtest.Record(t, "testdata/psql_copy_in.bin", l.chunks, 1)
	dbtest.Record(t, "testdata/psql_ssl_refused.bin", l.chunks, 3)
	client, server := l.rows()
	checkRows(t, client, server, []want{
		{"Query", "create table t(id int primary key, name text)", "CREATE TABLE"},
		{"Query", "insert into t values (1,'a'),(2,null)", "INSERT 0 2"},
		{"Query", "select * from t order by id; select count(*) from t", "id,name\n1,a\n2,[NULL]\nSELECT 2\ncount\n2\nSELECT 1"},
		{"Query", "select * from nope", `ERROR RESPONSE [Severity=ERROR Code=42P01 Message=relation "nope" does not exist Position=15]`},
		{"Query", "update t set name = 'b' where id = 2", "UPDATE 1"},
		{"Query", "copy t from stdin", "COPY 2"},
		{"Query", "copy t to stdout", "1\ta\n2\tb\n3\tc\n4\td\nCOPY 4"},
		{"Query", "select 42", "?column?\n42\nSELECT 1"},
	})
	for side := range roles {
		for _, c := range []string{"parse_errors", "unmatched_responses", "unexpected_responses", "gap_resyncs", "closed_before_response"} {
			if n := l.counts(side, c); n != 0 {
				t.Errorf("side %d: %s = %d", side+1, c, n)
			}
		}
	}
}

func pgbench(t *testing.T, port int, args ...string) string {
	t.Helper()
	bin := dbtest.Need(t, "pgbench", dbtest.PostgresBin()...)
	cmd := exec.Command(bin, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "pxq"}, append(args, "postgres")...)...)
	cmd.Env = append(cmd.Environ(), "PGPASSWORD="+dbtest.PostgresPassword, "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestPgbenchExtended runs pgbench's select-only script in the extended
// protocol, with named prepared statements (-M prepared) and unnamed
// ones (-M extended): every transaction must give one Execute row with
// the statement text and its bound value.
func TestPgbenchExtended(t *testing.T) {
	s := dbtest.StartPostgres(t)
	pgbench(t, s.Port, "-i", "-s", "1", "-q")
	for _, mode := range []string{"prepared", "extended"} {
		t.Run(mode, func(t *testing.T) {
			l := newLive(t)
			p := dbtest.NewProxy(t, s.Addr(), l.feed)
			const tx = 20
			pgbench(t, p.Port, "-n", "-S", "-M", mode, "-t", strconv.Itoa(tx), "-c", "2")
			p.Close()
			dbtest.Record(t, "testdata/pgbench_"+mode+".bin", l.chunks, 1) // 0 is its setup connection
			client, server := l.rows()
			for side, rows := range [][]map[string]any{client, server} {
				byCmd := map[string]int{}
				for _, r := range rows {
					byCmd[r["req_cmd"].(string)]++
					if r["req_cmd"] != "Execute" {
						continue
					}
					req, resp := r["req"].(string), r["resp"].(string)
					const q = "query=[SELECT abalance FROM pgbench_accounts WHERE aid = $1;] params=["
					aid, ok := strings.CutPrefix(req, q)
					if n, err := strconv.Atoi(strings.TrimSuffix(aid, "]")); !ok || err != nil || n < 1 || n > 100000 {
						t.Errorf("side %d: Execute req %q", side+1, req)
					}
					if resp != "0\nSELECT 1" {
						t.Errorf("side %d: Execute resp %q", side+1, resp)
					}
				}
				if byCmd["Execute"] != 2*tx || byCmd["Bind"] != 2*tx {
					t.Errorf("side %d: rows by command %v, want %d Execute and Bind", side+1, byCmd, 2*tx)
				}
				t.Logf("side %d: rows by command %v", side+1, byCmd)
				for _, c := range []string{"parse_errors", "unmatched_responses", "unexpected_responses", "gap_resyncs"} {
					if n := l.counts(side, c); n != 0 {
						t.Errorf("side %d: %s = %d", side+1, c, n)
					}
				}
			}
		})
	}
}
