// Package tablefuncs declares PxL's table functions (px.GetSchemas(),
// px.GetAgentStatus(), …), each with its arguments, its output relation,
// where a distributed plan runs it, and the producer of its rows. The
// compiler types calls with the declaration, the planner places them by
// Where, and the executor calls Rows with what the executing node knows.
package tablefuncs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/pxq-dev/pxq/funcs"
	t "github.com/pxq-dev/pxq/types"
)

// Placement says where a distributed plan runs a table function.
type Placement uint8

const (
	// Once runs it once, where the merge runs (the broker, or the embedded
	// engine): its answer is the same everywhere (the function registry).
	Once Placement = iota + 1
	// OnAgents runs it on every agent and unions the rows: it describes one
	// agent (its tables, its state).
	OnAgents
)

// Func is one table function.
type Func struct {
	Name     string
	Desc     string
	Args     []Arg
	Relation t.Relation
	Where    Placement
	// Rows produces the rows, each in Relation's column order; args holds
	// one value per Arg (its default when the call left it out).
	Rows func(env *Env, args []any) ([][]any, error)
}

// Arg is an argument of a table function.
type Arg struct {
	Name    string
	Type    t.DataType
	Default any
}

// Env is what a table function may read on the node that runs it.
type Env struct {
	Ctx      context.Context
	ASID     int64
	Hostname string
	Now      int64 // the query's now, ns since the epoch
	Version  string
	// StartTime is when this node's pxq started, ns since the epoch.
	StartTime int64
	// Tables describes the tables of the node's store.
	Tables []TableInfo
	// Agents answers GetAgentStatus for a deployment; nil on a single node,
	// which then reports itself.
	Agents Agents
	// Tracepoints answers GetTracepointStatus; nil where none can run
	// (no tracepoints).
	Tracepoints Tracepoints
}

// TracepointStatus describes one dynamic tracepoint (pxtrace), a row of
// GetTracepointStatus.
type TracepointStatus struct {
	ID   t.UInt128Value
	Name string
	// State is Pixie's LifeCycleState name: PENDING_STATE,
	// RUNNING_STATE, FAILED_STATE or TERMINATED_STATE.
	State string
	// Status says why it failed; empty otherwise.
	Status string
	Tables []string
}

// Tracepoints lists the dynamic tracepoints of a node or a deployment.
type Tracepoints interface {
	TracepointStatus(ctx context.Context) ([]TracepointStatus, error)
}

// TableInfo describes one table of a store.
type TableInfo struct {
	Name     string
	Desc     string
	Relation t.Relation
	// Store counters, for _DebugTableInfo.
	BatchesAdded, BatchesExpired, BytesAdded int64
	Batches                                  int64
	Bytes, MaxBytes                          int64
	MinTime                                  int64
}

// AgentStatus describes one agent, a row of GetAgentStatus.
type AgentStatus struct {
	ID                     t.UInt128Value
	ASID                   int64
	Hostname               string
	IPAddress              string
	State                  string // e.g. "AGENT_STATE_HEALTHY"
	CreateTime             int64  // ns since the epoch
	LastHeartbeatNS        int64  // ns since the last heartbeat
	KernelHeadersInstalled bool
	// Kelvin marks a merge-only agent (a broker), left out unless
	// include_kelvin is set.
	Kelvin bool
}

// Agents lists the agents of a deployment, for GetAgentStatus.
type Agents interface {
	AgentStatus(ctx context.Context) ([]AgentStatus, error)
}

// processStart is when this process started: the create time an agent
// reports for itself.
var processStart = time.Now().UnixNano()

// ProcessStart returns when this process started, ns since the epoch.
func ProcessStart() int64 { return processStart }

func c(name string, typ t.DataType) t.Column {
	return t.Column{Name: name, Type: typ, Semantic: t.STNone}
}

func cs(name string, typ t.DataType, sem t.SemanticType) t.Column {
	return t.Column{Name: name, Type: typ, Semantic: sem}
}

// all lists the table functions; set in init, since GetUDTFList's
// producer reads it.
var all []*Func

var byName map[string]*Func

func init() {
	all = []*Func{
		{Name: "GetTables", Desc: "Tables and their descriptions", Where: OnAgents,
			Relation: t.Relation{c("table_name", t.String), c("table_desc", t.String)},
			Rows: func(env *Env, _ []any) ([][]any, error) {
				var rows [][]any
				for _, tb := range env.Tables {
					rows = append(rows, []any{tb.Name, tb.Desc})
				}
				return rows, nil
			}},
		{Name: "GetSchemas", Desc: "One row per column of every table", Where: OnAgents,
			Relation: t.Relation{c("table_name", t.String), c("column_name", t.String), c("column_type", t.String),
				c("pattern_type", t.String), c("column_desc", t.String)},
			Rows: func(env *Env, _ []any) ([][]any, error) {
				var rows [][]any
				for _, tb := range env.Tables {
					for _, col := range tb.Relation {
						rows = append(rows, []any{tb.Name, col.Name, col.Type.String(), "GENERAL", col.Desc})
					}
				}
				return rows, nil
			}},
		{Name: "GetUDFList", Desc: "Registered scalar functions", Where: Once,
			Relation: t.Relation{c("name", t.String), c("return_type", t.String), c("args", t.String)},
			Rows: func(*Env, []any) ([][]any, error) {
				var rows [][]any
				for _, name := range funcs.ScalarNames() {
					f := funcs.Scalar(name)
					if f.Variadic != nil {
						rows = append(rows, []any{name, t.String.String(), "..."})
					}
					for _, o := range f.Overloads {
						rows = append(rows, []any{name, o.Ret.String(), typeNames(o.Args)})
					}
				}
				return rows, nil
			}},
		{Name: "GetUDAList", Desc: "Registered aggregates", Where: Once,
			Relation: t.Relation{c("name", t.String), c("return_type", t.String), c("args", t.String)},
			Rows: func(*Env, []any) ([][]any, error) {
				var rows [][]any
				for _, name := range funcs.AggNames() {
					for _, o := range funcs.Agg(name).Overloads {
						rows = append(rows, []any{name, o.Ret.String(), typeNames(o.Args)})
					}
				}
				return rows, nil
			}},
		{Name: "GetUDTFList", Desc: "Registered table functions", Where: Once,
			Relation: t.Relation{c("name", t.String), c("executor", t.String), c("init_args", t.String), c("output_relation", t.String)},
			Rows: func(*Env, []any) ([][]any, error) {
				var rows [][]any
				for _, f := range All() {
					exe := "UDTF_ONE_KELVIN"
					if f.Where == OnAgents {
						exe = "UDTF_ALL_AGENTS"
					}
					var args []string
					for _, a := range f.Args {
						args = append(args, a.Name+":"+a.Type.String())
					}
					rows = append(rows, []any{f.Name, exe, strings.Join(args, ","), f.Relation.String()})
				}
				return rows, nil
			}},
		{Name: "GetAgentStatus", Desc: "One row per agent", Where: OnAgents,
			Args: []Arg{{Name: "include_kelvin", Type: t.Boolean, Default: true}},
			Relation: t.Relation{c("agent_id", t.UInt128), c("asid", t.Int64), c("hostname", t.String), c("ip_address", t.String),
				c("agent_state", t.String), cs("create_time", t.Time64NS, t.STTimeNS), cs("last_heartbeat_ns", t.Int64, t.STDurationNS),
				c("kernel_headers_installed", t.Boolean)},
			Rows: func(env *Env, args []any) ([][]any, error) {
				includeKelvin, _ := args[0].(bool)
				agents := []AgentStatus{{ID: t.UPID(uint32(env.ASID), 0, 0), ASID: env.ASID, Hostname: env.Hostname,
					State: "AGENT_STATE_HEALTHY", CreateTime: env.StartTime}}
				if env.Agents != nil {
					var err error
					if agents, err = env.Agents.AgentStatus(env.Ctx); err != nil {
						return nil, err
					}
				}
				var rows [][]any
				for _, a := range agents {
					if a.Kelvin && !includeKelvin {
						continue
					}
					rows = append(rows, []any{a.ID, a.ASID, a.Hostname, a.IPAddress, a.State, a.CreateTime, a.LastHeartbeatNS, a.KernelHeadersInstalled})
				}
				return rows, nil
			}},
		{Name: "GetTracepointStatus", Desc: "One row per dynamic tracepoint (pxtrace): its state, and why it failed", Where: Once,
			Relation: t.Relation{c("tracepoint_id", t.UInt128), c("name", t.String), c("state", t.String), c("status", t.String), c("output_tables", t.String)},
			Rows: func(env *Env, _ []any) ([][]any, error) {
				if env.Tracepoints == nil {
					return nil, nil
				}
				sts, err := env.Tracepoints.TracepointStatus(env.Ctx)
				if err != nil {
					return nil, err
				}
				var rows [][]any
				for _, s := range sts {
					tables, _ := json.Marshal(s.Tables)
					if s.Tables == nil {
						tables = []byte("[]")
					}
					rows = append(rows, []any{s.ID, s.Name, s.State, s.Status, string(tables)})
				}
				return rows, nil
			}},
		{Name: "_DebugTableInfo", Desc: "Table store counters per table", Where: OnAgents,
			Relation: t.Relation{c("asid", t.Int64), c("name", t.String), c("id", t.Int64), c("batches_added", t.Int64),
				c("batches_expired", t.Int64), cs("bytes_added", t.Int64, t.STBytes), c("num_batches", t.Int64), c("compacted_batches", t.Int64),
				cs("size", t.Int64, t.STBytes), cs("cold_size", t.Int64, t.STBytes), cs("max_table_size", t.Int64, t.STBytes),
				cs("min_time", t.Time64NS, t.STTimeNS)},
			Rows: func(env *Env, _ []any) ([][]any, error) {
				var rows [][]any
				for i, tb := range env.Tables {
					rows = append(rows, []any{env.ASID, tb.Name, int64(i), tb.BatchesAdded, tb.BatchesExpired, tb.BytesAdded,
						tb.Batches, int64(0), tb.Bytes, int64(0), tb.MaxBytes, tb.MinTime})
				}
				return rows, nil
			}},
		{Name: "Version", Desc: "pxq version per agent", Where: OnAgents,
			Relation: t.Relation{c("asid", t.Int64), c("version", t.String)},
			Rows: func(env *Env, _ []any) ([][]any, error) {
				return [][]any{{env.ASID, env.Version}}, nil
			}},
		{Name: "_HeapGrowthStacks", Desc: "Where this agent's Go heap grew: its heap profile as pprof text", Where: OnAgents,
			Relation: t.Relation{c("asid", t.Int64), c("heap", t.String)},
			Rows: func(env *Env, _ []any) ([][]any, error) {
				var b bytes.Buffer
				if err := pprof.Lookup("heap").WriteTo(&b, 1); err != nil {
					return nil, fmt.Errorf("heap profile: %w", err)
				}
				return [][]any{{env.ASID, b.String()}}, nil
			}},
		{Name: "_HeapStats", Desc: "This agent's Go memory statistics as text", Where: OnAgents,
			Relation: t.Relation{c("asid", t.Int64), c("heap", t.String)},
			Rows: func(env *Env, _ []any) ([][]any, error) {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				text := fmt.Sprintf("heap_alloc_bytes %d\nheap_sys_bytes %d\nheap_idle_bytes %d\nheap_released_bytes %d\n"+
					"heap_objects %d\nsys_bytes %d\nnum_gc %d\ngc_pause_total_ns %d\n",
					m.HeapAlloc, m.HeapSys, m.HeapIdle, m.HeapReleased, m.HeapObjects, m.Sys, m.NumGC, m.PauseTotalNs)
				return [][]any{{env.ASID, text}}, nil
			}},
	}
	byName = make(map[string]*Func, len(all))
	for _, f := range all {
		byName[f.Name] = f
	}
}

// Lookup returns the named table function, or nil.
func Lookup(name string) *Func { return byName[name] }

// All returns every table function, sorted by name.
func All() []*Func {
	out := append([]*Func(nil), all...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Call runs f's producer with the literal arguments of a call (nil or
// missing ones take their defaults).
func (f *Func) Call(env *Env, args []any) ([][]any, error) {
	full := make([]any, len(f.Args))
	for i, a := range f.Args {
		full[i] = a.Default
		if i < len(args) && args[i] != nil {
			full[i] = args[i]
		}
	}
	rows, err := f.Rows(env, full)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) != len(f.Relation) {
			return nil, fmt.Errorf("%s: a row has %d values for %d columns", f.Name, len(r), len(f.Relation))
		}
	}
	return rows, nil
}

func typeNames(ts []t.DataType) string {
	s := make([]string, len(ts))
	for i, typ := range ts {
		s[i] = typ.String()
	}
	return strings.Join(s, ",")
}
