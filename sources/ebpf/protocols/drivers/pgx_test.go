package drivers

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// pgxSession runs what a service does with pgx: DDL with the simple
// protocol, statements with arguments over the extended protocol (the
// default: named statements cached per connection; and unnamed ones),
// a pipelined batch, and an error.
func pgxSession(t *testing.T, port int) []stmt {
	ctx := context.Background()
	url := fmt.Sprintf("postgres://pxq:%s@127.0.0.1:%d/postgres?sslmode=disable", dbtest.PostgresPassword, port)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgx connect: %v", err)
	}
	defer conn.Close(ctx)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(conn.Exec(ctx, "create table items(id int primary key, name text, price numeric)"))
	for i, name := range []string{"mug", "kettle", "filter"} {
		must(conn.Exec(ctx, "insert into items values ($1, $2, $3)", i+1, name, 2.5*float64(i+1)))
	}
	var name string
	if err := conn.QueryRow(ctx, "select name from items where id = $1", 2).Scan(&name); err != nil || name != "kettle" {
		t.Fatalf("select: %q %v", name, err)
	}
	if err := conn.QueryRow(ctx, "select count(*) from items where price > $1", pgx.QueryExecModeExec, 3).Scan(new(int64)); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	b.Queue("update items set price = price + $1 where id = $2", 1, 1)
	b.Queue("select id from items where name = $1", "filter")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "select * from nope where id = $1", 1); err == nil {
		t.Fatal("a select from a missing table did not fail")
	}
	must(conn.Exec(ctx, "drop table items"))
	return []stmt{
		{"create table items(id int primary key, name text, price numeric)", "", "CREATE TABLE"},
		{"insert into items values ($1, $2, $3)", "1, mug, 2.5", "INSERT 0 1"},
		{"insert into items values ($1, $2, $3)", "2, kettle, 5", "INSERT 0 1"},
		{"insert into items values ($1, $2, $3)", "3, filter, 7.5", "INSERT 0 1"},
		{"select name from items where id = $1", "2", "kettle"},
		{"select count(*) from items where price > $1", "3", "SELECT 1"},
		{"update items set price = price + $1 where id = $2", "1, 1", "UPDATE 1"},
		{"select id from items where name = $1", "filter", "SELECT 1"},
		{"select * from nope where id = $1", "", `Code=42P01 Message=relation "nope" does not exist`},
		{"drop table items", "", "DROP TABLE"},
	}
}

func TestPgx(t *testing.T) {
	for _, side := range sides {
		t.Run(side.name, func(t *testing.T) {
			s := dbtest.StartPostgres(t)
			tr, store := tracer(t, side)
			want := pgxSession(t, s.Port)
			rows := settled(t, store, "pgsql_events", side.rows(s.Port))
			checkStatements(t, rows, want, "req", "resp")
			zero(t, tr, "pgsql.parse_errors", "pgsql.unmatched_responses", "pgsql.unexpected_responses")
		})
	}
}
