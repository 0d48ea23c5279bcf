package tables

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

var update = flag.Bool("update", false, "rewrite docs/tables.md's generated part from the declarations")

const docPath = "../../docs/tables.md"

// docMarker ends docs/tables.md's hand-written part; what follows it is
// WriteMarkdown's output.
const docMarker = "<!-- Generated from the table declarations (sources/tables): do not edit below; go test ./sources/tables -run TestTablesDoc -update -->\n"

// TestTablesDoc: docs/tables.md lists the declared tables and columns.
func TestTablesDoc(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	head, got, ok := strings.Cut(string(b), docMarker)
	if !ok {
		t.Fatalf("%s has no line %q", docPath, docMarker)
	}
	var want bytes.Buffer
	want.WriteString("\n")
	if err := WriteMarkdown(&want); err != nil {
		t.Fatal(err)
	}
	if got == want.String() {
		return
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(head+docMarker+want.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is not what the declarations say; run go test ./sources/tables -run TestTablesDoc -update\n--- want\n%s", docPath, want.String())
}

// TestDeclarations checks every source table: a unique name, a
// description, time_ first, every column described; and that a store
// created from All (as an engine creates it) takes the declaration's
// writer, whose rows then have the described columns.
func TestDeclarations(t *testing.T) {
	ds := Decls()
	if len(ds) != len(All) {
		t.Fatalf("%d declarations, %d tables", len(ds), len(All))
	}
	store := table.NewStore(0)
	for _, n := range Names() {
		tb := All[n]
		if tb.Desc == "" {
			t.Errorf("%s: no description", n)
		}
		if len(tb.Relation) == 0 || tb.Relation[0].Name != "time_" || tb.Relation[0].Type != types.Time64NS {
			t.Errorf("%s: the first column is not time_ TIME64NS: %v", n, tb.Relation)
		}
		for _, c := range tb.Relation {
			if c.Desc == "" || c.Semantic == types.STUnspecified {
				t.Errorf("%s.%s: no description or semantic type", n, c.Name)
			}
		}
		if _, err := store.Create(n, tb.Relation, table.Options{Desc: tb.Desc}); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range ds {
		w, err := d.Create(store)
		if err != nil {
			t.Errorf("%s: the declaration's writer over the described table: %v", d.Name(), err)
			continue
		}
		if got, want := store.Table(d.Name()).Schema(), All[d.Name()].Relation.ArrowSchema(); !got.Equal(want) || w == nil {
			t.Errorf("%s: the table's columns %v, described %v", d.Name(), got, want)
		}
	}
}
