package drivers

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// side is which ends of the driver's connections a test traces: the
// driver's process alone (the server is not traced, as a managed
// database would not be), or every process (both ends are traced, so
// each request is one row, the server's).
type side struct {
	name string
	all  bool
}

var sides = []side{{"client", false}, {"server", true}}

func (s side) rows(port int) func(map[string]any) bool {
	if s.all {
		return ebpftest.ServerRow(port)
	}
	return ebpftest.ClientRow(port)
}

func tracer(t *testing.T, s side) (*ebpf.Tracer, *table.Store) {
	t.Helper()
	cfg := ebpf.Config{} // this process
	if s.all {
		cfg.OnlyPIDs = []uint32{}
	}
	return ebpftest.Tracer(t, cfg)
}

// settled waits for the rows keep selects to stop coming.
func settled(t *testing.T, store *table.Store, name string, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	rows := ebpftest.WaitRows(t, store, name, 1, 5*time.Second, keep)
	for {
		time.Sleep(300 * time.Millisecond)
		more := ebpftest.WaitRows(t, store, name, 0, 0, keep)
		if len(more) == len(rows) {
			return rows
		}
		rows = more
	}
}

// stmt is a statement a session sent: its text, the values bound to it
// as the row shows them ("" when there are none), and text its row's
// response holds.
type stmt struct{ query, params, resp string }

// checkStatements checks that the rows that execute statements (their
// req names the statement) come in the order the session sent them,
// one per statement, each with its values and response, and that every
// row is the driver's process, on 127.0.0.1, with a latency.
func checkStatements(t *testing.T, rows []map[string]any, want []stmt, reqCol, respCol string) {
	t.Helper()
	var exec []map[string]any
	for _, r := range rows {
		// MySQL's COM_STMT_CLOSE and COM_QUIT have no response (status 1).
		if lat, _ := r["latency"].(int64); lat < 0 || lat > int64(5*time.Second) || lat == 0 && r["resp_status"] != int64(1) {
			t.Errorf("row %v: latency %d", r[reqCol], lat)
		}
		if r["remote_addr"] != "127.0.0.1" {
			t.Errorf("row %v: remote_addr %v", r[reqCol], r["remote_addr"])
		}
		if r["trace_role"] == int64(1) && r["upid"].(types.UInt128Value).PID() != uint32(os.Getpid()) {
			t.Errorf("client row %v: pid %d, want the test's", r[reqCol], r["upid"].(types.UInt128Value).PID())
		}
		if executes(r) {
			exec = append(exec, r)
		}
	}
	for i, r := range exec {
		t.Logf("row %d: %v | %v | %.80q", i, r["req_cmd"], r[reqCol], r[respCol])
	}
	if len(exec) != len(want) {
		t.Fatalf("%d rows execute statements, want %d (of %d rows)", len(exec), len(want), len(rows))
	}
	for i, w := range want {
		req, resp := exec[i][reqCol].(string), exec[i][respCol].(string)
		if !strings.Contains(req, w.query) {
			t.Errorf("row %d: req %q, want the statement %q", i, req, w.query)
		}
		if w.params != "" && !strings.Contains(req, "params=["+w.params+"]") {
			t.Errorf("row %d: req %q, want the values [%s]", i, req, w.params)
		}
		if !strings.Contains(resp, w.resp) {
			t.Errorf("row %d: resp %q, want %q in it", i, resp, w.resp)
		}
	}
}

// executes tells the rows that run a statement from those that prepare,
// bind or describe it; a statement the server refused before it ran
// ends in the row of the message it refused, with the error.
var executing = regexp.MustCompile(`^(Query|Execute)$`)

// MySQL's commands by number: COM_QUERY and COM_STMT_EXECUTE.
const comQuery, comStmtExecute = 3, 23

func executes(r map[string]any) bool {
	switch cmd := r["req_cmd"].(type) {
	case string:
		return executing.MatchString(cmd) || failed(r)
	case int64:
		return cmd == comQuery || cmd == comStmtExecute || failed(r)
	}
	return false
}

// failed tells a row whose response is an error, as each table shows
// one.
func failed(r map[string]any) bool {
	if s, ok := r["resp"].(string); ok && strings.HasPrefix(s, "ERROR RESPONSE") {
		return true // pgsql_events
	}
	return r["resp_status"] == int64(3) // mysql_events: ERR
}

// zero checks that the tracer's counters named are 0.
func zero(t *testing.T, tr *ebpf.Tracer, names ...string) {
	t.Helper()
	st := tr.Stats()
	for _, n := range names {
		if v := st.Counters[n]; v != 0 {
			t.Errorf("counter %s = %d, want 0", n, v)
		}
	}
	if st.LostEvents != 0 {
		t.Errorf("%d events lost", st.LostEvents)
	}
}
