package pgsql

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// psql runs psql with stdin and args on port; its errors are in what it
// prints.
func psql(t *testing.T, port int, stdin string, args ...string) string {
	t.Helper()
	bin := dbtest.Need(t, "psql", dbtest.PostgresBin()...)
	out, _ := dbtest.RunInputErr([]string{"PGPASSWORD=" + dbtest.PostgresPassword, "PGSSLMODE=disable"}, stdin,
		bin, append([]string{"-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "pxq", "-d", "postgres", "-v", "ON_ERROR_STOP=0"}, args...)...)
	return out
}

// TestPsql runs psql against a real server: simple queries, several
// statements in one Query, an error, COPY in and out, and an SSLRequest
// refused.
func TestPsql(t *testing.T) {
	s := dbtest.StartPostgres(t)
	l := target.Live(t)
	p := dbtest.NewProxy(t, s.Addr(), l.Feed)
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
	out = dbtest.Run(t, []string{"PGPASSWORD=" + dbtest.PostgresPassword, "PGSSLMODE=prefer"}, dbtest.Need(t, "psql", dbtest.PostgresBin()...),
		"-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "pxq", "-d", "postgres", "-c", "select 42")
	if !strings.Contains(out, "42") {
		t.Fatalf("psql sslmode=prefer: %s", out)
	}
	p.Close()
	dbtest.Record(t, "testdata/psql.bin", l.Chunks, 0)
	dbtest.Record(t, "testdata/psql_copy_in.bin", l.Chunks, 1)
	dbtest.Record(t, "testdata/psql_ssl_refused.bin", l.Chunks, 3)
	l.CheckSides(t, func(rows []map[string]any) { check(t, rows, psqlLiveRows) }, nil)
	l.Zero(t, "parse_errors", "unmatched_responses", "unexpected_responses", "gap_resyncs", "closed_before_response")
}

// psqlLiveRows are TestPsql's rows: psql's session (psqlRows), then COPY
// in and out and a query after an SSLRequest refused.
var psqlLiveRows = slices.Concat(psqlRows, []want{
	{"Query", "copy t from stdin", "COPY 2"},
	{"Query", "copy t to stdout", "1\ta\n2\tb\n3\tc\n4\td\nCOPY 4"},
	{"Query", "select 42", "?column?\n42\nSELECT 1"},
})

func pgbench(t *testing.T, port int, args ...string) string {
	t.Helper()
	bin := dbtest.Need(t, "pgbench", dbtest.PostgresBin()...)
	return dbtest.Run(t, []string{"PGPASSWORD=" + dbtest.PostgresPassword, "PGSSLMODE=disable"},
		bin, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "pxq"}, append(args, "postgres")...)...)
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
			l := target.Live(t)
			p := dbtest.NewProxy(t, s.Addr(), l.Feed)
			const tx = 20
			pgbench(t, p.Port, "-n", "-S", "-M", mode, "-t", strconv.Itoa(tx), "-c", "2")
			p.Close()
			dbtest.Record(t, "testdata/pgbench_"+mode+".bin", l.Chunks, 1) // 0 is its setup connection
			client, server := l.Rows()
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
			}
			l.Zero(t, "parse_errors", "unmatched_responses", "unexpected_responses", "gap_resyncs")
		})
	}
}
