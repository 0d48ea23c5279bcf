package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/plan"
)

// tableFuncOp produces a table function's rows as one batch.
type tableFuncOp struct {
	q    *query
	name string
	node *plan.TableFunc
	fn   *tablefuncs.Func
	done bool
}

func (q *query) newTableFunc(n *plan.TableFunc) (operator, error) {
	name := opName(n)
	f := tablefuncs.Lookup(n.Func)
	if f == nil {
		return nil, fmt.Errorf("exec: %s: unknown table function %q", name, n.Func)
	}
	return &tableFuncOp{q: q, name: name, node: n, fn: f}, nil
}

func (t *tableFuncOp) next(ctx context.Context) (arrow.Record, error) {
	if t.done {
		return nil, nil
	}
	t.done = true
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	args := make([]any, len(t.node.Args))
	for i, a := range t.node.Args {
		if a != nil {
			args[i] = a.Value
		}
	}
	rows, err := t.fn.Call(t.q.tableFuncEnv(ctx), args)
	if err != nil {
		return nil, fmt.Errorf("exec: %s: %w", t.name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	// Rows are in the function's own column order; the plan's relation
	// picks columns by name.
	own := t.fn.Relation
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

// tableFuncEnv is what the query's node tells table functions.
func (q *query) tableFuncEnv(ctx context.Context) *tablefuncs.Env {
	env := &tablefuncs.Env{Ctx: ctx, ASID: int64(q.fctx.ASID), Hostname: q.fctx.Hostname, Now: q.fctx.Now,
		Version: q.opts.Version, StartTime: q.opts.StartTime, Agents: q.opts.Agents, Tracepoints: q.opts.Tracepoints}
	if env.StartTime == 0 {
		env.StartTime = tablefuncs.ProcessStart()
	}
	if q.opts.Store != nil {
		for _, tb := range q.opts.Store.Tables() {
			s := tb.Stats()
			env.Tables = append(env.Tables, tablefuncs.TableInfo{Name: tb.Name(), Desc: tb.Desc(), Relation: tb.Relation(),
				BatchesAdded: s.BatchesAdded, BatchesExpired: s.BatchesExpired, BytesAdded: s.BytesAdded,
				Batches: int64(s.Batches), Bytes: s.Bytes, MaxBytes: s.MaxBytes, MinTime: s.MinTime})
		}
	}
	return env
}
