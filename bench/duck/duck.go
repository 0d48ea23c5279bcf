// Package duck loads pxq record batches into DuckDB (through a Parquet
// file) and runs SQL on one connection with one thread, reading every
// result row.
package duck

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow/go/v15/arrow"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// DB is a single-threaded DuckDB connection.
type DB struct {
	db   *sql.DB
	Conn *sql.Conn
	dir  string
}

// Open starts an in-memory DuckDB with threads=1 on its one connection.
func Open(ctx context.Context) (*DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "SET threads = 1"); err != nil {
		return nil, fmt.Errorf("duckdb: set threads: %w", err)
	}
	dir, err := os.MkdirTemp("", "pxq-duck")
	if err != nil {
		return nil, err
	}
	return &DB{db: db, Conn: conn, dir: dir}, nil
}

// Close closes the database and removes its temporary files.
func (d *DB) Close() {
	d.Conn.Close()
	d.db.Close()
	os.RemoveAll(d.dir)
}

// Load creates table name from the batches (UINT128 columns become
// BLOBs, times TIMESTAMP_NS).
func (d *DB) Load(ctx context.Context, name string, rel types.Relation, recs []arrow.Record) error {
	path := filepath.Join(d.dir, name+".parquet")
	if err := table.WriteFile(path, rel, recs); err != nil {
		return fmt.Errorf("duckdb: writing %s: %w", path, err)
	}
	q := fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT * FROM read_parquet('%s')", name, path)
	if _, err := d.Conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("duckdb: loading %s: %w", name, err)
	}
	return nil
}

// Query runs q and returns every row.
func (d *DB) Query(ctx context.Context, q string) ([][]any, error) {
	rows, err := d.Conn.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}
