package table

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pxq-dev/pxq/types"
)

func TestCSVInference(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.csv")
	os.WriteFile(p, []byte("time_,n,f,b,s,when\n1000,1,1.5,true,a,2024-01-02T03:04:05Z\n2000,2,2,false,b,2024-01-02T03:04:06Z\n"), 0o644)
	rel, recs, err := ReadFile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []types.DataType{types.Time64NS, types.Int64, types.Float64, types.Boolean, types.String, types.Time64NS}
	for i, c := range rel {
		if c.Type != want[i] {
			t.Errorf("column %s: %v, want %v", c.Name, c.Type, want[i])
		}
	}
	if len(recs) != 1 || recs[0].NumRows() != 2 {
		t.Fatalf("rows: %v", recs)
	}
	// A known relation types the columns it names.
	known := types.Relation{{Name: "n", Type: types.String}}
	rel, _, err = ReadFile(p, known)
	if err != nil || rel[1].Type != types.String {
		t.Errorf("known relation ignored: %v %v", rel, err)
	}
	os.WriteFile(p, []byte("n\n1\nx\n"), 0o644)
	if _, _, err := ReadFile(p, types.Relation{{Name: "n", Type: types.Int64}}); err == nil {
		t.Error("bad integer accepted")
	}
}
