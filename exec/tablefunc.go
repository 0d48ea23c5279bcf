package exec

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/types"
)

// AgentStatus describes one agent, a row of GetAgentStatus.
type AgentStatus struct {
	ID                     types.UInt128Value
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

// tableFuncOp produces a table function's rows as one batch.
type tableFuncOp struct {
	q    *query
	name string
	node *plan.TableFunc
	done bool
}

func (q *query) newTableFunc(n *plan.TableFunc) (operator, error) {
	name := opName(n)
	if _, ok := schema.TableFuncs[n.Func]; !ok {
		return nil, fmt.Errorf("exec: %s: unknown table function %q", name, n.Func)
	}
	return &tableFuncOp{q: q, name: name, node: n}, nil
}

func (t *tableFuncOp) next(ctx context.Context) (arrow.Record, error) {
	if t.done {
		return nil, nil
	}
	t.done = true
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := t.rows(ctx)
	if err != nil {
		return nil, fmt.Errorf("exec: %s: %w", t.name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	// Rows are in the function's own column order; the plan's relation
	// picks columns by name.
	own := schema.TableFuncs[t.node.Func].Relation
	rel := t.node.Rel
	if len(rel) == 0 {
		rel = own
	}
	cols := make([]arrow.Array, len(rel))
	for i, c := range rel {
		k := own.Index(c.Name)
		if k < 0 {
			return nil, fmt.Errorf("exec: %s: no column %q", t.name, c.Name)
		}
		b := newColBuf(c.Type)
		for _, r := range rows {
			if err := b.appendValue(r[k]); err != nil {
				return nil, fmt.Errorf("exec: %s: column %s: %w", t.name, c.Name, err)
			}
		}
		cols[i] = b.array()
	}
	return newRecord(rel.ArrowSchema(), cols, int64(len(rows))), nil
}

func (t *tableFuncOp) close() {}

// arg returns the literal argument named name (by position in the
// function's argument list), or its default.
func (t *tableFuncOp) arg(name string) any {
	tf := schema.TableFuncs[t.node.Func]
	for i, a := range tf.Args {
		if a.Name == name {
			if i < len(t.node.Args) && t.node.Args[i] != nil {
				return t.node.Args[i].Value
			}
			return a.Default
		}
	}
	return nil
}

func (t *tableFuncOp) rows(ctx context.Context) ([][]any, error) {
	q := t.q
	asid := int64(q.fctx.ASID)
	var rows [][]any
	switch t.node.Func {
	case "GetTables":
		if q.opts.Store == nil {
			return nil, nil
		}
		for _, tb := range q.opts.Store.Tables() {
			rows = append(rows, []any{tb.Name(), tb.Desc()})
		}
	case "GetSchemas":
		if q.opts.Store == nil {
			return nil, nil
		}
		for _, tb := range q.opts.Store.Tables() {
			for _, c := range tb.Relation() {
				rows = append(rows, []any{tb.Name(), c.Name, c.Type.String(), "GENERAL", c.Desc})
			}
		}
	case "GetUDFList":
		for _, name := range funcs.ScalarNames() {
			f := funcs.Scalar(name)
			if f.Variadic != nil {
				rows = append(rows, []any{name, types.String.String(), "..."})
			}
			for _, o := range f.Overloads {
				rows = append(rows, []any{name, o.Ret.String(), typeNames(o.Args)})
			}
		}
	case "GetUDAList":
		for _, name := range funcs.AggNames() {
			for _, o := range funcs.Agg(name).Overloads {
				rows = append(rows, []any{name, o.Ret.String(), typeNames(o.Args)})
			}
		}
	case "GetUDTFList":
		for _, name := range sortedTableFuncs() {
			tf := schema.TableFuncs[name]
			exe := "UDTF_ONE_KELVIN"
			if tf.OnAgents {
				exe = "UDTF_ALL_AGENTS"
			}
			var args []string
			for _, a := range tf.Args {
				args = append(args, a.Name+":"+a.Type.String())
			}
			rows = append(rows, []any{name, exe, strings.Join(args, ","), tf.Relation.String()})
		}
	case "GetAgentStatus":
		includeKelvin, _ := t.arg("include_kelvin").(bool)
		var agents []AgentStatus
		if q.opts.Agents != nil {
			var err error
			if agents, err = q.opts.Agents.AgentStatus(ctx); err != nil {
				return nil, err
			}
		} else {
			agents = []AgentStatus{{ID: types.UPID(q.fctx.ASID, 0, 0), ASID: asid, Hostname: q.fctx.Hostname,
				State: "AGENT_STATE_HEALTHY", CreateTime: q.fctx.Now}}
		}
		for _, a := range agents {
			if a.Kelvin && !includeKelvin {
				continue
			}
			rows = append(rows, []any{a.ID, a.ASID, a.Hostname, a.IPAddress, a.State, a.CreateTime, a.LastHeartbeatNS, a.KernelHeadersInstalled})
		}
	case "_DebugTableInfo":
		if q.opts.Store == nil {
			return nil, nil
		}
		for i, tb := range q.opts.Store.Tables() {
			s := tb.Stats()
			rows = append(rows, []any{asid, s.Name, int64(i), s.BatchesAdded, s.BatchesExpired, s.BytesAdded,
				int64(s.Batches), int64(0), s.Bytes, int64(0), s.MaxBytes, s.MinTime})
		}
	case "Version":
		rows = append(rows, []any{asid, q.opts.Version})
	default:
		return nil, fmt.Errorf("table function %s is not implemented by the executor", t.node.Func)
	}
	return rows, nil
}

func typeNames(ts []types.DataType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ",")
}

func sortedTableFuncs() []string {
	var names []string
	for n := range schema.TableFuncs {
		names = append(names, n)
	}
	for i := 1; i < len(names); i++ {
		for k := i; k > 0 && names[k] < names[k-1]; k-- {
			names[k], names[k-1] = names[k-1], names[k]
		}
	}
	return names
}
