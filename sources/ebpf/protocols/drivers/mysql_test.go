package drivers

import (
	"database/sql"
	"fmt"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// mysqlSession runs what a service does with database/sql and
// go-sql-driver/mysql: statements without arguments as COM_QUERY,
// statements with arguments prepared on the server (the driver's
// default: COM_STMT_PREPARE, EXECUTE, CLOSE), a prepared statement
// executed several times, a transaction, and errors.
func mysqlSession(t *testing.T, port int) []stmt {
	db, err := sql.Open("mysql", fmt.Sprintf("pxq:pxq@tcp(127.0.0.1:%d)/pxq", port))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: the rows come in the order sent
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Exec("create table items (id int primary key, name varchar(20), price double)"))
	ins, err := db.Prepare("insert into items values (?, ?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"mug", "kettle", "filter"} {
		must(ins.Exec(i+1, name, 2.5*float64(i+1)))
	}
	ins.Close()
	var name string
	if err := db.QueryRow("select name from items where id = ?", 2).Scan(&name); err != nil || name != "kettle" {
		t.Fatalf("select: %q %v", name, err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	must(tx.Exec("update items set price = price + ? where id = ?", 1.5, 1))
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("select * from nope where id = ?", 1); err == nil {
		t.Fatal("a select from a missing table did not fail")
	}
	if _, err := db.Exec("insert into items values (1, 'again', 0)"); err == nil {
		t.Fatal("a duplicate key did not fail")
	}
	must(db.Exec("drop table items"))
	return []stmt{
		{"create table items (id int primary key, name varchar(20), price double)", "", "affected_rows=0"},
		{"insert into items values (?, ?, ?)", "1, mug, 2.5", "affected_rows=1"},
		{"insert into items values (?, ?, ?)", "2, kettle, 5", "affected_rows=1"},
		{"insert into items values (?, ?, ?)", "3, filter, 7.5", "affected_rows=1"},
		{"select name from items where id = ?", "2", "columns=1 rows=1"},
		{"START TRANSACTION", "", "affected_rows=0"},
		{"update items set price = price + ? where id = ?", "1.5, 1", "affected_rows=1"},
		{"COMMIT", "", "affected_rows=0"},
		{"select * from nope where id = ?", "", "ERROR 1146 (42S02): Table 'pxq.nope' doesn't exist"},
		{"insert into items values (1, 'again', 0)", "", "ERROR 1062 (23000): Duplicate entry '1' for key 'PRIMARY'"},
		{"drop table items", "", "affected_rows=0"},
	}
}

func TestGoSQLDriverMySQL(t *testing.T) {
	for _, side := range sides {
		t.Run(side.name, func(t *testing.T) {
			s := dbtest.StartMariaDB(t)
			tr, store := tracer(t, side)
			want := mysqlSession(t, s.Port)
			rows := settled(t, store, "mysql_events", side.rows(s.Port))
			checkStatements(t, rows, want, "req_body", "resp_body")
			zero(t, tr, "mysql.parse_errors", "mysql.unmatched_responses")
		})
	}
}
