package mysql_test

// Real traffic: a MariaDB server and its clients (the mariadb client,
// Perl's DBD::MariaDB with server-side prepared statements) on
// 127.0.0.1, traced by the socket tracer on both sides.

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtrace"
)

type row = map[string]any

// checkRows checks the rows traced on one side; a command with no
// response (resp_status 1) has a latency of 0.
func checkRows(t *testing.T, side string, got, wants []row) {
	t.Helper()
	noResponse := func(r row) bool { return r["resp_status"] == int64(1) }
	dbtest.ExpectTraced(t, side, got, wants, noResponse, "req_cmd", "req_body", "resp_status", "resp_body")
}

const mariadbInput = "create table t (id int primary key auto_increment, name varchar(20));\n" +
	"insert into t (name) values ('a'), (null);\nselect * from t order by id;\nselect * from nope;\n"

var mariadbWants = []row{
	{"req_cmd": int64(3), "req_body": "create table t (id int primary key auto_increment, name varchar(20))", "resp_status": int64(2), "resp_body": "affected_rows=0"},
	{"req_cmd": int64(3), "req_body": "insert into t (name) values ('a'), (null)", "resp_status": int64(2), "resp_body": "affected_rows=2 last_insert_id=1"},
	{"req_cmd": int64(3), "req_body": "select * from t order by id", "resp_status": int64(2), "resp_body": "columns=2 rows=2"},
	{"req_cmd": int64(3), "req_body": "select * from nope", "resp_status": int64(3), "resp_body": "ERROR 1146 (42S02): Table 'pxq.nope' doesn't exist"},
	{"req_cmd": int64(1), "req_body": "", "resp_status": int64(1), "resp_body": ""},
}

// mariadb holds the mariadb client until Run, so that its pid can be
// traced.
func mariadb(t *testing.T, port int) *dbtest.Held {
	return dbtest.Hold(t, nil, mariadbInput, dbtest.Need(t, "mariadb"), "--no-defaults", "-h", "127.0.0.1", "-P", strconv.Itoa(port),
		"-u", "pxq", "-ppxq", "--ssl=0", "--batch", "--force", "pxq")
}

// TestTraceMariaDB traces the mariadb client and the server: both ends
// are traced, so each command is one row, the server's. Then it traces
// the client alone (the server is not traced, as a managed database
// would not be): its side makes the rows.
func TestTraceMariaDB(t *testing.T) {
	for _, side := range []dbtrace.Side{dbtrace.Both, dbtrace.Client} {
		t.Run(side.String(), func(t *testing.T) {
			s := dbtest.StartMariaDB(t)
			r := dbtrace.Run(t, dbtrace.Want{Table: "mysql_events", Port: s.Port, N: len(mariadbWants)}, side, mariadb(t, s.Port))
			if !strings.Contains(r.Out, "doesn't exist") {
				t.Fatalf("mariadb: %s", r.Out)
			}
			checkRows(t, side.String(), r.Rows, mariadbWants)
			if side == dbtrace.Both {
				dbtest.Zero(t, "tracer", r.Tracer.Stats().Counters, "mysql.parse_errors", "mysql.unmatched_responses", "mysql.stray_packets")
			}
		})
	}
}

// TestTracePerlPrepared traces server-side prepared statements (client
// and server traced: the server's rows): the execute rows carry the
// statement text and the bound values.
func TestTracePerlPrepared(t *testing.T) {
	perl := dbtest.Need(t, "perl")
	if out, err := dbtest.RunErr(nil, perl, "-MDBD::MariaDB", "-e", "1"); err != nil {
		dbtest.Skip(t, "DBD::MariaDB missing (apt-get install libdbd-mariadb-perl): %s", out)
	}
	s := dbtest.StartMariaDB(t)
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}})
	const n = 200
	script := `use DBI;
my $dbh = DBI->connect("DBI:MariaDB:database=pxq;host=127.0.0.1;port=$ARGV[0];mariadb_server_prepare=1", "pxq", "pxq", {RaiseError => 1});
$dbh->do("create table e (id int primary key, name varchar(20))");
my $ins = $dbh->prepare("insert into e values (?, ?)");
$ins->execute($_, "name$_") for 1..$ARGV[1];
my $sel = $dbh->prepare("select count(*) from e where id <= ?");
$sel->execute($ARGV[1]); print $sel->fetchrow_array, "\n";
undef $ins; undef $sel; $dbh->disconnect;`
	if out := dbtest.Run(t, nil, perl, "-e", script, strconv.Itoa(s.Port), strconv.Itoa(n)); strings.TrimSpace(out) != strconv.Itoa(n) {
		t.Fatalf("perl: %s", out)
	}
	// Both ends are traced: the server's rows.
	server := ebpftest.ServerRow(s.Port)
	keep := func(r row) bool { return server(r) && r["req_cmd"] == int64(23) }
	got := ebpftest.WaitRows(t, store, "mysql_events", n+2, 5*time.Second, keep)
	if len(got) != n+2 {
		t.Fatalf("server: %d execute rows, want %d", len(got), n+2)
	}
	for i, r := range got[1 : n+1] {
		want := "query=[insert into e values (?, ?)] params=[" + strconv.Itoa(i+1) + ", name" + strconv.Itoa(i+1) + "]"
		ebpftest.Expect(t, r, row{"req_body": want, "resp_status": int64(2), "resp_body": "affected_rows=1"})
	}
	ebpftest.Expect(t, got[n+1], row{"req_body": "query=[select count(*) from e where id <= ?] params=[" + strconv.Itoa(n) + "]", "resp_body": "columns=1 rows=1"})
}
