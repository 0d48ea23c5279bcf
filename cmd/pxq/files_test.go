package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// writeEventFiles writes rows of a small events table to files Parquet files
// of dir, and returns dir.
func writeEventFiles(t *testing.T, files, rowsPerFile int) string {
	t.Helper()
	dir := t.TempDir()
	rel := types.Relation{{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS}, {Name: "v", Type: types.Int64}, {Name: "s", Type: types.String}}
	for f := 0; f < files; f++ {
		st := table.NewStore(0)
		tb, err := st.Create("events", rel, table.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w := table.NewWriter(tb)
		for i := 0; i < rowsPerFile; i++ {
			row := f*rowsPerFile + i
			if err := w.AppendRow(int64(1_700_000_000_000_000_000+row), int64(row), fmt.Sprint("s", row%7)); err != nil {
				t.Fatal(err)
			}
		}
		w.Flush()
		var recs []arrow.Record
		for _, b := range tb.Snapshot(0, 0) {
			recs = append(recs, b.Record)
		}
		if err := table.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%02d.parquet", f)), rel, recs); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeScript(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.pxl")
	if err := os.WriteFile(p, []byte("import px\n"+src+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRunTableGlobCut reads a glob of files as one table, and says on
// stderr and in the output that -o json and -o csv cut a table at the
// row cap.
func TestRunTableGlobCut(t *testing.T) {
	dir := writeEventFiles(t, 3, 4000)
	all := writeScript(t, "px.display(px.DataFrame('events'))")
	stdout, stderr, err := runPXQ(t, "run", all, "--table", "events="+filepath.Join(dir, "*.parquet"), "-o", "json")
	if err != nil {
		t.Fatalf("pxq run: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 10001 || lines[10000] != `{"_table":"output","_truncated":true,"_rows":10000}` {
		t.Errorf("%d lines, the last %q", len(lines), lines[len(lines)-1])
	}
	if !strings.Contains(stderr, "table output was cut at 10000 rows, the row cap (--max-rows)") {
		t.Errorf("stderr does not say the table was cut:\n%s", stderr)
	}
	stdout, stderr, err = runPXQ(t, "run", all, "--table", "events="+dir, "-o", "csv", "--max-rows", "50")
	if err != nil {
		t.Fatalf("pxq run: %v\n%s", err, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 52 || lines[51] != "# table output: cut at 50 rows" {
		t.Errorf("csv: %d lines, the last %q", len(lines), lines[len(lines)-1])
	}
	if !strings.Contains(stderr, "cut at 50 rows") {
		t.Errorf("stderr does not say the table was cut:\n%s", stderr)
	}
	// Not cut: nothing said.
	count := writeScript(t, "px.display(px.DataFrame('events').agg(n=('v', px.count), top=('v', px.max)))")
	stdout, stderr, err = runPXQ(t, "run", count, "--table", "events="+dir, "-o", "json")
	if err != nil {
		t.Fatalf("pxq run: %v\n%s", err, stderr)
	}
	if strings.TrimSpace(stdout) != `{"_table":"output","n":12000,"top":11999}` || strings.Contains(stderr, "cut") {
		t.Errorf("count over the folder: %s\n%s", stdout, stderr)
	}
}

// TestExplainFileScans: pxq explain says what a scan of files reads.
func TestExplainFileScans(t *testing.T) {
	dir := writeEventFiles(t, 3, 100)
	s := writeScript(t, "df = px.DataFrame('events')\ndf = df[df.v >= 250]\npx.display(df[['s']])")
	stdout, stderr, err := runPXQ(t, "explain", s, "--table", "events="+dir)
	if err != nil {
		t.Fatalf("pxq explain: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "== file scans") || !strings.Contains(stdout, "2 of 3 columns (v, s), 1 of 3 units") ||
		!strings.Contains(stdout, "part-02.parquet: 0") {
		t.Errorf("explain:\n%s", stdout)
	}
}

// TestRunTableWrongColumns: a file that does not have a declared table's
// columns is refused, naming the column.
func TestRunTableWrongColumns(t *testing.T) {
	dir := writeEventFiles(t, 1, 10)
	s := writeScript(t, "px.display(px.DataFrame('http_events'))")
	_, stderr, err := runPXQ(t, "run", s, "--table", "http_events="+filepath.Join(dir, "part-00.parquet"))
	if err == nil || !strings.Contains(stderr, "column upid is missing") {
		t.Errorf("err %v, stderr:\n%s", err, stderr)
	}
}

// TestRunStreamedTables: -o csv streams several tables, each titled,
// and one table untitled.
func TestRunStreamedTables(t *testing.T) {
	dir := writeEventFiles(t, 2, 100)
	two := writeScript(t, "df = px.DataFrame('events')\npx.display(df.agg(n=('v', px.count)), 'a')\npx.display(df.head(2)[['v']], 'b')")
	stdout, stderr, err := runPXQ(t, "run", two, "--table", "events="+dir, "-o", "csv")
	if err != nil {
		t.Fatalf("pxq run: %v\n%s", err, stderr)
	}
	if want := "# table: a\nn\n200\n# table: b\nv\n0\n1\n"; stdout != want {
		t.Errorf("two tables:\n%q\nwant\n%q", stdout, want)
	}
	one := writeScript(t, "px.display(px.DataFrame('events').agg(n=('v', px.count)))")
	if stdout, stderr, err = runPXQ(t, "run", one, "--table", "events="+dir, "-o", "csv"); err != nil || stdout != "n\n200\n" {
		t.Errorf("one table: %q, %v\n%s", stdout, err, stderr)
	}
}
