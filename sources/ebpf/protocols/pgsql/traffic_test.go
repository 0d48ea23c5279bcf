package pgsql_test

// Real traffic: a PostgreSQL server and its clients (psql, pgbench) on
// 127.0.0.1, traced by the socket tracer on both sides.

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtrace"
	"github.com/pxq-dev/pxq/types"
)

var psqlArgs = []string{
	"-c", "create table tt(id int primary key, name text)",
	"-c", "insert into tt values (1,'a'),(2,null)",
	"-c", "select * from tt order by id; select count(*) from tt",
	"-c", "select * from nope",
	"-c", "drop table tt",
}

var psqlWants = []map[string]any{
	{"req_cmd": "Query", "req": "create table tt(id int primary key, name text)", "resp": "CREATE TABLE"},
	{"req_cmd": "Query", "req": "insert into tt values (1,'a'),(2,null)", "resp": "INSERT 0 2"},
	{"req_cmd": "Query", "req": "select * from tt order by id; select count(*) from tt", "resp": "id,name\n1,a\n2,[NULL]\nSELECT 2\ncount\n2\nSELECT 1"},
	{"req_cmd": "Query", "req": "select * from nope", "resp": `ERROR RESPONSE [Severity=ERROR Code=42P01 Message=relation "nope" does not exist Position=15]`},
	{"req_cmd": "Query", "req": "drop table tt", "resp": "DROP TABLE"},
}

// psql holds psql (sslmode prefer: an SSLRequest the server refuses,
// then plaintext) until Run, so that its pid can be traced.
func psql(t *testing.T, port int) *dbtest.Held {
	t.Helper()
	bin := dbtest.Need(t, "psql", dbtest.PostgresBin()...)
	args := append([]string{"-X", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "pxq", "-d", "postgres"}, psqlArgs...)
	return dbtest.Hold(t, []string{"PGPASSWORD=" + dbtest.PostgresPassword, "PGSSLMODE=prefer"}, "", bin, args...)
}

// checkPsqlRows checks the rows of psqlArgs traced on one side, by pid
// when pid is not 0.
func checkPsqlRows(t *testing.T, side string, got []map[string]any, pid int) {
	t.Helper()
	dbtest.ExpectTraced(t, side, got, psqlWants, nil, "req", "resp")
	for i, r := range got {
		ebpftest.Expect(t, r, map[string]any{"remote_addr": "127.0.0.1", "local_addr": "127.0.0.1", "encrypted": false})
		if u := r["upid"].(types.UInt128Value); pid != 0 && int(u.PID()) != pid {
			t.Errorf("%s row %d: pid %d, want %d", side, i, u.PID(), pid)
		}
	}
}

// TestTracePsql traces psql and the server backend it talks to: every
// statement is one row, the server's (both ends are traced, so the
// client's side is left out, as for HTTP), with its text, its result or
// error. Then it traces psql alone (the server is not traced, as a
// managed database would not be): its side makes the rows.
func TestTracePsql(t *testing.T) {
	for _, side := range []dbtrace.Side{dbtrace.Both, dbtrace.Client} {
		t.Run(side.String(), func(t *testing.T) {
			s := dbtest.StartPostgres(t)
			p := psql(t, s.Port)
			r := dbtrace.Run(t, dbtrace.Want{Table: "pgsql_events", Port: s.Port, N: len(psqlWants)}, side, p)
			if !strings.Contains(r.Out, "does not exist") {
				t.Fatalf("psql: %s", r.Out)
			}
			if side == dbtrace.Client {
				checkPsqlRows(t, side.String(), r.Rows, p.Pid)
				return
			}
			checkPsqlRows(t, side.String(), r.Rows, 0)
			st := r.Tracer.Stats()
			if st.Counters["client_side_of_traced_server_conns"] < 1 {
				t.Errorf("psql's side was not left out: %v", st.Counters)
			}
			dbtest.Zero(t, "tracer", st.Counters, "pgsql.parse_errors", "pgsql.unmatched_responses", "pgsql.unexpected_responses")
		})
	}
}

// TestTracePgbench traces pgbench's select-only script over the extended
// protocol at its full rate, with the server: every transaction it
// reports must be an Execute row, with the statement and its bound value.
func TestTracePgbench(t *testing.T) {
	s, pgbench := startPgbench(t)
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}})
	const clients, tx = 4, 2500
	out := pgbench("-n", "-S", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", "2", "-t", strconv.Itoa(tx))
	if !strings.Contains(out, "number of transactions actually processed: "+strconv.Itoa(clients*tx)) {
		t.Fatalf("pgbench: %s", out)
	}
	// Both ends are traced: the server's rows.
	server := ebpftest.ServerRow(s.Port)
	isExec := func(r map[string]any) bool { return server(r) && r["req_cmd"] == "Execute" }
	got := ebpftest.WaitRows(t, store, "pgsql_events", clients*tx, 10*time.Second, isExec)
	bad := 0
	for _, r := range got {
		req, _ := r["req"].(string)
		if !strings.HasPrefix(req, "query=[SELECT abalance FROM pgbench_accounts WHERE aid = $1;] params=[") || r["resp"] != "0\nSELECT 1" {
			bad++
		}
	}
	t.Logf("server: %d Execute rows for %d transactions, %d malformed", len(got), clients*tx, bad)
	if len(got) != clients*tx || bad != 0 {
		t.Errorf("server: %d Execute rows (%d malformed), want %d", len(got), bad, clients*tx)
	}
	st := tr.Stats()
	t.Logf("lost events %d, pgsql counters %v", st.LostEvents, pick(st.Counters, "pgsql."))
}

// startPgbench starts a server with pgbench's tables (scale 1) and
// returns it and a function that runs pgbench with args against it.
func startPgbench(t testing.TB) (*dbtest.Server, func(args ...string) string) {
	s := dbtest.StartPostgres(t)
	bench := dbtest.Need(t, "pgbench", dbtest.PostgresBin()...)
	env := []string{"PGPASSWORD=" + dbtest.PostgresPassword, "PGSSLMODE=disable"}
	conn := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "pxq", "postgres"}
	run := func(args ...string) string { return dbtest.Run(t, env, bench, append(args, conn...)...) }
	run("-i", "-s", "1", "-q")
	return s, run
}

func pick(m map[string]int64, prefix string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// BenchmarkPgbench measures what tracing costs pgbench's select-only
// load (extended protocol, prepared statements) at its full rate, in
// rounds with the tracer paused and attached, interleaved: queries per
// second (median ratio on/off), the tracer's CPU per statement (the test
// process's CPU: pgbench and the server are other processes), and the
// statements captured (the server's Execute rows) against those pgbench
// reports. Run with -bench Pgbench -benchtime 1x.
func BenchmarkPgbench(b *testing.B) {
	s, pgbench := startPgbench(b)
	tr, store := ebpftest.Tracer(b, ebpf.Config{OnlyPIDs: []uint32{}})
	run := func() (tx int, tps float64) {
		out := pgbench("-n", "-S", "-M", "prepared", "-c", "2", "-j", "2", "-T", "3")
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "number of transactions actually processed: "); ok {
				tx, _ = strconv.Atoi(strings.Fields(v)[0])
			}
			if v, ok := strings.CutPrefix(l, "tps = "); ok {
				tps, _ = strconv.ParseFloat(strings.Fields(v)[0], 64)
			}
		}
		return tx, tps
	}
	executes := func() int {
		n := 0
		for _, r := range ebpftest.Rows(b, store, "pgsql_events") {
			if r["req_cmd"] == "Execute" && r["local_port"] == int64(s.Port) {
				n++
			}
		}
		return n
	}
	var ratios, cpuPerStmt, captured []float64
	rounds := 5
	for i := 0; i < rounds; i++ {
		tr.Pause()
		_, off := run()
		if err := tr.Resume(); err != nil {
			b.Fatal(err)
		}
		before := executes()
		cpu0 := cpuNS()
		tx, on := run()
		cpu := cpuNS() - cpu0
		time.Sleep(300 * time.Millisecond) // the last rows' flush
		rows := executes() - before
		ratios = append(ratios, on/off)
		cpuPerStmt = append(cpuPerStmt, float64(cpu)/float64(tx))
		captured = append(captured, float64(rows)/float64(tx))
		b.Logf("round %d: off %.0f tps, on %.0f tps, %d tx, %d Execute rows, tracer CPU %.0f ns/statement", i, off, on, tx, rows, float64(cpu)/float64(tx))
	}
	b.ReportMetric(median(ratios), "tps_on/off")
	b.ReportMetric(median(cpuPerStmt), "tracer_ns/stmt")
	b.ReportMetric(median(captured), "captured/sent")
	b.ReportMetric(float64(tr.Stats().LostEvents), "lost_events")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// cpuNS is the CPU time (user and system) of this process.
func cpuNS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
