package mysql

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

type want struct {
	cmd    int64
	req    string
	status int64
	resp   string
}

// check checks rows against wants, in order; a resp ending in "*"
// stands for any that begins so (dbtest.Wild).
func check(t *testing.T, rows []map[string]any, wants []want) {
	t.Helper()
	dbtest.CheckRows(t, rows, wants, func(r map[string]any, w want) want {
		return want{r["req_cmd"].(int64), r["req_body"].(string), r["resp_status"].(int64), dbtest.Wild(r["resp_body"], w.resp)}
	})
}

// noResponse selects the rows of commands that have no response, whose
// latency is 0.
func noResponse(r map[string]any) bool { return r["resp_status"] == int64(statusNone) }

func trim(v any) string {
	s, _ := v.(string)
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// mariadb runs the mariadb client with stdin and args on port; its errors
// are in what it prints.
func mariadb(t *testing.T, port int, stdin string, args ...string) string {
	t.Helper()
	out, _ := dbtest.RunInputErr(nil, stdin, dbtest.Need(t, "mariadb"),
		append([]string{"--no-defaults", "-h", "127.0.0.1", "-P", strconv.Itoa(port), "-u", "pxq", "-ppxq", "--ssl=0"}, args...)...)
	return out
}

// TestMariaDBClient runs the mariadb client and mariadb-admin against a
// real server: COM_INIT_DB, queries with results, errors, a procedure
// with several results, COM_PING, COM_STATISTICS, COM_QUIT.
func TestMariaDBClient(t *testing.T) {
	s := dbtest.StartMariaDB(t)
	l := target.Live(t)
	p := dbtest.NewProxy(t, s.Addr(), l.Feed)
	out := mariadb(t, p.Port, `use pxq
create table t (id int primary key auto_increment, name varchar(20));
insert into t (name) values ('a'), (null);
select * from t order by id;
select * from nope;
delimiter //
create procedure pr() begin select 1; select 2, 3; end//
delimiter ;
call pr();
`, "--batch", "--force")
	if !strings.Contains(out, "doesn't exist") {
		t.Fatalf("mariadb: %s", out)
	}
	admin := dbtest.Need(t, "mariadb-admin")
	for _, c := range []string{"ping", "status"} {
		dbtest.Run(t, nil, admin, "--no-defaults", "-h", "127.0.0.1", "-P", strconv.Itoa(p.Port), "-u", "pxq", "-ppxq", c)
	}
	p.Close()
	dbtest.Record(t, "testdata/mariadb.bin", l.Chunks, 0)
	dbtest.Record(t, "testdata/mariadb_admin.bin", l.Chunks, 1)
	l.CheckSides(t, func(rows []map[string]any) { check(t, rows, mariadbRows) }, noResponse)
	l.Zero(t, "parse_errors", "unmatched_responses", "stray_packets", "gap_resyncs", "closed_before_response")
}

var mariadbRows = []want{
	{comQuery, "SELECT DATABASE()", statusOK, "columns=1 rows=1"},
	{comInitDB, "pxq", statusOK, "affected_rows=0"},
	{comQuery, "create table t (id int primary key auto_increment, name varchar(20))", statusOK, "affected_rows=0"},
	{comQuery, "insert into t (name) values ('a'), (null)", statusOK, "affected_rows=2 last_insert_id=1"},
	{comQuery, "select * from t order by id", statusOK, "columns=2 rows=2"},
	{comQuery, "select * from nope", statusErr, "ERROR 1146 (42S02): Table 'pxq.nope' doesn't exist"},
	{comQuery, "create procedure pr() begin select 1; select 2, 3; end", statusOK, "affected_rows=0"},
	{comQuery, "call pr()", statusOK, "columns=1 rows=1; columns=2 rows=1; affected_rows=0"},
	{comQuit, "", statusNone, ""},
	{comPing, "", statusOK, "affected_rows=0"},
	{comQuit, "", statusNone, ""},
	{comStatistics, "", statusOK, "Uptime: *"},
	{comQuit, "", statusNone, ""},
}

// perlPrepared runs a Perl DBI client (DBD::MariaDB, a Debian package)
// with server-side prepared statements: COM_STMT_PREPARE, EXECUTE with
// bound values of several types, a result set in the binary protocol,
// an error at prepare, COM_STMT_CLOSE.
const perlPrepared = `
use strict; use DBI;
my $dbh = DBI->connect("DBI:MariaDB:database=pxq;host=127.0.0.1;port=$ARGV[0];mariadb_server_prepare=1",
	"pxq", "pxq", {RaiseError => 1, PrintError => 0, AutoCommit => 1});
$dbh->do("create table e (id int primary key, name varchar(20), score double)");
my $ins = $dbh->prepare("insert into e values (?, ?, ?)");
$ins->execute(1, "ann", 1.5);
$ins->execute(2, "bob", undef);
my $sel = $dbh->prepare("select name, score from e where id >= ? order by id");
$sel->execute(1);
my $rows = $sel->fetchall_arrayref;
print scalar(@$rows), " rows\n";
undef $ins; undef $sel;
eval { $dbh->prepare("select * from nope where id = ?") }; print "error: $@" if $@;
$dbh->disconnect;
`

func TestPerlPrepared(t *testing.T) {
	perl := dbtest.Need(t, "perl")
	if out, err := dbtest.RunErr(nil, perl, "-MDBD::MariaDB", "-e", "1"); err != nil {
		dbtest.Skip(t, "DBD::MariaDB missing (apt-get install libdbd-mariadb-perl): %s", out)
	}
	s := dbtest.StartMariaDB(t)
	l := target.Live(t)
	p := dbtest.NewProxy(t, s.Addr(), l.Feed)
	out := dbtest.Run(t, nil, perl, "-e", perlPrepared, strconv.Itoa(p.Port))
	if !strings.Contains(out, "2 rows") || !strings.Contains(out, "doesn't exist") {
		t.Fatalf("perl: %s", out)
	}
	p.Close()
	dbtest.Record(t, "testdata/perl_prepared.bin", l.Chunks, 0)
	l.CheckSides(t, func(rows []map[string]any) { check(t, rows, perlRows) }, noResponse)
}

var perlRows = []want{
	{comQuery, "SET NAMES 'utf8mb4'", statusOK, "affected_rows=0"},
	{comQuery, "SET character_set_server = 'utf8mb4'", statusOK, "affected_rows=0"},
	{comQuery, "SET collation_connection = 'utf8mb4_unicode_ci'", statusOK, "affected_rows=0"},
	{comQuery, "SET collation_server = 'utf8mb4_unicode_ci'", statusOK, "affected_rows=0"},
	{comStmtPrepare, "create table e (id int primary key, name varchar(20), score double)", statusOK, "stmt_id=1 params=0 columns=0"},
	{comStmtExecute, "query=[create table e (id int primary key, name varchar(20), score double)] params=[]", statusOK, "affected_rows=0"},
	{comStmtClose, "create table e (id int primary key, name varchar(20), score double)", statusNone, ""},
	{comStmtPrepare, "insert into e values (?, ?, ?)", statusOK, "stmt_id=2 params=3 columns=0"},
	{comStmtExecute, "query=[insert into e values (?, ?, ?)] params=[1, ann, 1.5]", statusOK, "affected_rows=1"},
	{comStmtExecute, "query=[insert into e values (?, ?, ?)] params=[2, bob, NULL]", statusOK, "affected_rows=1"},
	{comStmtPrepare, "select name, score from e where id >= ? order by id", statusOK, "stmt_id=3 params=1 columns=2"},
	{comStmtExecute, "query=[select name, score from e where id >= ? order by id] params=[1]", statusOK, "columns=2 rows=2"},
	{comStmtClose, "insert into e values (?, ?, ?)", statusNone, ""},
	{comStmtClose, "select name, score from e where id >= ? order by id", statusNone, ""},
	{comStmtPrepare, "select * from nope where id = ?", statusErr, "ERROR 1146 (42S02): Table 'pxq.nope' doesn't exist"},
	{comQuit, "", statusNone, ""},
}

// TestLargeQuery sends a query of more than 16 MiB: its payload spans
// two wire packets. The row keeps the start of the text and the result.
func TestLargeQuery(t *testing.T) {
	s := dbtest.StartMariaDB(t)
	l := target.Live(t)
	p := dbtest.NewProxy(t, s.Addr(), l.Feed)
	q := "select length('" + strings.Repeat("x", 17<<20) + "') as n"
	out := mariadb(t, p.Port, "set global max_allowed_packet = 64*1024*1024;\n", "--max-allowed-packet=64M", "-e", "set global max_allowed_packet = 67108864")
	if out != "" {
		t.Fatalf("mariadb: %s", out)
	}
	out = mariadb(t, p.Port, q+";\n", "--max-allowed-packet=64M", "--batch", "-N", "pxq")
	if strings.TrimSpace(out) != strconv.Itoa(17<<20) {
		t.Fatalf("mariadb: %.300s", out)
	}
	p.Close()
	client, server := l.Rows()
	l.Zero(t, "parse_errors", "stray_packets", "unmatched_responses")
	for side, rows := range [][]map[string]any{client, server} {
		var found bool
		for _, r := range rows {
			if r["req_cmd"] == int64(comQuery) && strings.HasPrefix(q, r["req_body"].(string)) && len(r["req_body"].(string)) == dbtest.Config.MaxHeaderBytes {
				found = true
				if r["resp_status"] != int64(statusOK) || r["resp_body"] != "columns=1 rows=1" {
					t.Errorf("side %d: large query answered %v %q", side+1, r["resp_status"], r["resp_body"])
				}
			}
		}
		if !found {
			t.Errorf("side %d: no row of the large query", side+1)
		}
		if t.Failed() {
			for _, r := range rows {
				t.Logf("row %d %q %d %q", r["req_cmd"], trim(r["req_body"]), r["resp_status"], r["resp_body"])
			}
		}
	}
}
