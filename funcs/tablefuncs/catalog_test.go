package tablefuncs_test

import (
	"context"
	"testing"

	"github.com/pxq-dev/pxq/funcs"
	_ "github.com/pxq-dev/pxq/funcs/mdfuncs" // the metadata functions are part of the catalog
	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/types"
)

// TestCatalog walks every function the compiler, planner and executor
// share: a scalar with no volatility or an overload with no kernel, an
// aggregate with no accumulator, or a table function with no producer or
// placement fails it.
func TestCatalog(t *testing.T) {
	scalars := funcs.ScalarNames()
	if len(scalars) < 100 {
		t.Fatalf("only %d scalar functions registered", len(scalars))
	}
	for _, name := range scalars {
		f := funcs.Scalar(name)
		if f.Volatility == funcs.Unset {
			t.Errorf("scalar %s has no volatility", name)
		}
		if f.Variadic != nil {
			o, err := f.Variadic([]types.DataType{types.String, types.String})
			if err != nil || o.Kernel == nil {
				t.Errorf("variadic %s: no kernel for (STRING, STRING): %v", name, err)
			}
			continue
		}
		if len(f.Overloads) == 0 {
			t.Errorf("scalar %s has no overloads", name)
		}
		for _, o := range f.Overloads {
			if o.Kernel == nil {
				t.Errorf("scalar %s%v has no kernel", name, o.Args)
			}
		}
	}
	for _, name := range funcs.AggNames() {
		for _, o := range funcs.Agg(name).Overloads {
			if o.New == nil {
				t.Errorf("aggregate %s%v has no accumulator", name, o.Args)
			}
		}
	}
	env := &tablefuncs.Env{Ctx: context.Background(), ASID: 7, Hostname: "h", Now: 2e18, Version: "v", StartTime: 1e18,
		Tables:      []tablefuncs.TableInfo{{Name: "t", Desc: "d", Relation: types.Relation{{Name: "time_", Type: types.Time64NS}}}},
		Tracepoints: oneTracepoint{}}
	for _, f := range tablefuncs.All() {
		if f.Rows == nil || (f.Where != tablefuncs.Once && f.Where != tablefuncs.OnAgents) || len(f.Relation) == 0 {
			t.Errorf("table function %s: producer, placement or relation missing", f.Name)
			continue
		}
		rows, err := f.Call(env, nil)
		if err != nil {
			t.Errorf("%s: %v", f.Name, err)
			continue
		}
		if len(rows) == 0 {
			t.Errorf("%s: no rows", f.Name)
		}
	}
}

// TestPlaceBoundFunctions: the functions that name the executing agent or
// read its metadata are never folded, and pure ones are.
func TestPlaceBoundFunctions(t *testing.T) {
	for _, name := range []string{"asid", "vizier_name", "vizier_id", "_exec_hostname", "upid", "nslookup",
		"upid_to_pod_name", "ip_to_pod_id", "pod_id_to_service_name"} {
		if f := funcs.Scalar(name); f == nil || f.Volatility != funcs.PlaceBound {
			t.Errorf("%s should be place-bound", name)
		}
	}
	for _, name := range []string{"add", "upid_to_pid", "time_to_int64", "pluck", "regex_match"} {
		if f := funcs.Scalar(name); f == nil || f.Volatility != funcs.Immutable {
			t.Errorf("%s should be immutable", name)
		}
	}
}

// TestAgentStatusCreateTime: an agent reports when it started, not the
// query's now.
func TestAgentStatusCreateTime(t *testing.T) {
	env := &tablefuncs.Env{Ctx: context.Background(), ASID: 3, Now: 2e18, StartTime: 1e18}
	rows, err := tablefuncs.Lookup("GetAgentStatus").Call(env, nil)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	rel := tablefuncs.Lookup("GetAgentStatus").Relation
	if got := rows[0][rel.Index("create_time")]; got != int64(1e18) {
		t.Errorf("create_time = %v, want the start time", got)
	}
}

// oneTracepoint is a node with one failed tracepoint.
type oneTracepoint struct{}

func (oneTracepoint) TracepointStatus(context.Context) ([]tablefuncs.TracepointStatus, error) {
	return []tablefuncs.TracepointStatus{{ID: types.UInt128Value{High: 1, Low: 2}, Name: "drops", State: "FAILED_STATE",
		Status: "bpftrace: no kprobes", Tables: []string{"drop_table"}}}, nil
}

// TestTracepointStatusRows: Pixie's columns, the tables as a JSON list.
func TestTracepointStatusRows(t *testing.T) {
	f := tablefuncs.Lookup("GetTracepointStatus")
	rows, err := f.Call(&tablefuncs.Env{Ctx: context.Background(), Tracepoints: oneTracepoint{}}, nil)
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	want := []any{types.UInt128Value{High: 1, Low: 2}, "drops", "FAILED_STATE", "bpftrace: no kprobes", `["drop_table"]`}
	for i, v := range want {
		if rows[0][i] != v {
			t.Errorf("%s = %v, want %v", f.Relation[i].Name, rows[0][i], v)
		}
	}
	if rows, err := f.Call(&tablefuncs.Env{Ctx: context.Background()}, nil); err != nil || len(rows) != 0 {
		t.Errorf("without tracepoints: rows %v, err %v", rows, err)
	}
}
