package scripts_test

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// dbEnv is an engine holding generated rows of the database tables, in
// the forms the tracers write (simple queries and executed prepared
// statements with their bound values), and what was generated.
func dbEnv(t *testing.T, n int) (*captureEnv, map[string]map[string][2]int) {
	t.Helper()
	eng, err := engine.New(engine.Config{Meta: metadata.None{}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := rand.New(rand.NewSource(3))
	upid := types.UPID(0, 4242, 1)
	// want[table][statement] = {executions, failures}
	want := map[string]map[string][2]int{"pgsql_events": {}, "mysql_events": {}, "redis_events": {}}
	writer := func(name string) *table.Writer { return table.NewWriter(eng.Store().Table(name)) }
	pg, my, rd := writer("pgsql_events"), writer("mysql_events"), writer("redis_events")
	conn := func(i int) []any {
		return []any{now.Add(-time.Duration(n-i) * time.Millisecond).UnixNano(), upid, "127.0.0.1", int64(40000 + i%7), "127.0.0.1", int64(5432), int64(2), false}
	}
	count := func(tb, stmt string, failed bool) {
		c := want[tb][stmt]
		c[0]++
		if failed {
			c[1]++
		}
		want[tb][stmt] = c
	}
	for i := 0; i < n; i++ {
		lat := int64(r.Intn(5_000_000))
		id := r.Intn(1000)
		failed := r.Intn(10) == 0
		resp := "SELECT 1"
		if failed {
			resp = "ERROR RESPONSE [Severity=ERROR Code=42P01 Message=relation does not exist]"
		}
		switch i % 3 {
		case 0:
			pg.AppendRow(append(conn(i), "Query", fmt.Sprintf("SELECT name FROM users WHERE id = %d", id), resp, lat)...)
			count("pgsql_events", "SELECT name FROM users WHERE id = $1", failed)
		case 1:
			pg.AppendRow(append(conn(i), "Execute", fmt.Sprintf("query=[UPDATE carts SET n = $1 WHERE id = $2] params=[%d, %d]", id%5, id), resp, lat)...)
			count("pgsql_events", "UPDATE carts SET n = $1 WHERE id = $2", failed)
		case 2:
			pg.AppendRow(append(conn(i), "Parse", "UPDATE carts SET n = $1 WHERE id = $2", "PARSE COMPLETE", lat)...)
		}
		status := int64(2)
		if failed {
			status = 3
		}
		my.AppendRow(append(conn(i), int64(3), fmt.Sprintf("select * from orders where id = %d", id), status, "columns=1 rows=1", lat)...)
		count("mysql_events", "select * from orders where id = ?", failed)
		cmd, reply := "GET", "v"
		if i%2 == 0 {
			cmd, reply = "SET", "OK"
		}
		if failed {
			reply = "WRONGTYPE Operation against a key holding the wrong kind of value"
		}
		rd.AppendRow(append(conn(i), cmd, fmt.Sprintf(`["k%d"]`, id), reply, lat)...)
		count("redis_events", cmd, failed)
	}
	for _, w := range []*table.Writer{pg, my, rd} {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return &captureEnv{eng: eng, now: now}, want
}

// TestDatabaseScripts: px/pgsql_stats, px/mysql_stats and px/redis_stats
// count executions and failures per normalized statement (per command)
// as the generated rows say.
func TestDatabaseScripts(t *testing.T) {
	env, want := dbEnv(t, 3000)
	for _, tc := range []struct{ script, out, table, key, count string }{
		{"px/pgsql_stats", "pgsql_statements", "pgsql_events", "statement", "executions"},
		{"px/mysql_stats", "mysql_statements", "mysql_events", "statement", "executions"},
		{"px/redis_stats", "redis_commands", "redis_events", "req_cmd", "calls"},
	} {
		res := env.run(t, tc.script, map[string]string{"start_time": "-1h"})[tc.out]
		got := res.by(tc.key, tc.count)
		if len(got) != len(want[tc.table]) {
			t.Errorf("%s: groups %v, want %v", tc.script, got, want[tc.table])
			continue
		}
		for stmt, c := range want[tc.table] {
			if got[stmt] != float64(c[0]) {
				t.Errorf("%s: %q executed %v times, want %d", tc.script, stmt, got[stmt], c[0])
			}
		}
		for _, row := range res.rows {
			c := want[tc.table][fmt.Sprint(row[tc.key])]
			if rate, wantRate := row["error_rate"].(float64), float64(c[1])/float64(c[0]); rate < wantRate-1e-9 || rate > wantRate+1e-9 {
				t.Errorf("%s: %v error rate %v, want %v", tc.script, row[tc.key], rate, wantRate)
			}
		}
	}
}
