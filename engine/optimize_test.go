package engine

import (
	"testing"
	"time"

	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/scripts"
)

// TestOptimizeKeepsOutputRelations checks, over every library script,
// that optimizing never changes an output's columns, types or semantic
// types (which drive display).
func TestOptimizeKeepsOutputRelations(t *testing.T) {
	eng, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := scripts.NewLibrary().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		logical, err := CompileLogical(Query{Script: s, Now: time.Now()}, eng.Catalog())
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		opt, err := planner.Optimize(logical)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
			continue
		}
		for i, sink := range logical.Sinks {
			want, got := sink.Relation(), opt.Sinks[i].Relation()
			if len(want) != len(got) {
				t.Errorf("%s %s: %d columns after optimizing, %d before", s.Name, sink.Name, len(got), len(want))
				continue
			}
			for j := range want {
				if want[j].Name != got[j].Name || want[j].Type != got[j].Type || want[j].Semantic != got[j].Semantic {
					t.Errorf("%s %s column %d: %+v after optimizing, %+v before", s.Name, sink.Name, j, got[j], want[j])
				}
			}
		}
	}
}
