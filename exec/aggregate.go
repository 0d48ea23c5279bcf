package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// aggregateOp is the hash aggregate. It consumes its whole input on the
// first call to next, mapping each row's group key to a dense group
// number through a typed key table and updating one accumulator per
// aggregate with whole batches; then it emits the groups, batch by
// batch.
//
// Modes (plan.AggMode): full folds rows into final values; partial folds
// rows and emits each aggregate's serialized state as a STRING column;
// final merges such states (its input is a partial aggregate's output)
// and finalizes.
type aggregateOp struct {
	q      *query
	name   string
	node   *plan.Aggregate
	in     operator
	groups []int // input column of each group key
	keyTs  []types.DataType
	args   [][]evaluator // full/partial: argument expressions per aggregate
	states []int         // final: input column of each aggregate's state
	accs   []funcs.Accumulator
	schema *arrow.Schema
	acct   account

	table keyTable
	ngrp  int
	ids   []uint32
	argv  []funcs.Value

	out  []arrow.Array // the result, emitted in slices
	rows int
	pos  int
	done bool
}

func (q *query) newAggregate(n *plan.Aggregate) (operator, error) {
	name := opName(n)
	rel := n.Input.Relation()
	a := &aggregateOp{q: q, name: name, node: n, schema: n.Relation().ArrowSchema(),
		acct: account{b: q.mem, op: name}}
	for _, g := range n.Groups {
		i := rel.Index(g)
		if i < 0 {
			return nil, fmt.Errorf("exec: %s: unknown group column %q (input has %v)", name, g, rel.Names())
		}
		a.groups = append(a.groups, i)
		a.keyTs = append(a.keyTs, rel[i].Type)
	}
	for _, x := range n.Aggs {
		ts := make([]types.DataType, len(x.Args))
		for i, e := range x.Args {
			ts[i] = e.Type()
		}
		o, err := funcs.ResolveAgg(x.Func, ts)
		if err != nil {
			return nil, fmt.Errorf("exec: %s: %s: %w", name, x.Name, err)
		}
		a.accs = append(a.accs, o.New())
		if n.Mode == plan.AggFinal {
			i := rel.Index(x.Name)
			if i < 0 || rel[i].Type != types.String {
				return nil, fmt.Errorf("exec: %s: input has no partial state column %q (it has %v)", name, x.Name, rel)
			}
			a.states = append(a.states, i)
			continue
		}
		evs := make([]evaluator, len(x.Args))
		for i, e := range x.Args {
			ev, err := compileExpr(e, rel)
			if err != nil {
				return nil, fmt.Errorf("exec: %s: %s: %w", name, x.Name, err)
			}
			evs[i] = ev
		}
		a.args = append(a.args, evs)
	}
	if len(a.groups) > 0 {
		a.table = newKeyTable(a.keyTs)
	} else {
		a.ngrp = 1
		for _, acc := range a.accs {
			acc.Resize(1)
		}
	}
	in, err := q.build(n.Input)
	if err != nil {
		return nil, err
	}
	a.in = in
	return a, nil
}

func (a *aggregateOp) next(ctx context.Context) (arrow.Record, error) {
	if !a.done {
		if err := a.consume(ctx); err != nil {
			return nil, err
		}
		a.done = true
	}
	if a.pos >= a.rows {
		return nil, nil
	}
	hi := a.pos + a.q.batch
	if hi > a.rows {
		hi = a.rows
	}
	rec := sliceRecord(a.schema, newRecord(a.schema, a.out, int64(a.rows)), int64(a.pos), int64(hi))
	a.pos = hi
	return rec, nil
}

func (a *aggregateOp) consume(ctx context.Context) error {
	checkAt := 0
	rowsSince := 0
	for {
		rec, err := a.in.next(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		if err := a.update(rec); err != nil {
			return fmt.Errorf("exec: %s: %w", a.name, err)
		}
		// Re-measure memory when the rows seen since the last measure
		// reach the group count, so that measuring stays cheap.
		rowsSince += int(rec.NumRows())
		if rowsSince >= checkAt {
			if err := a.account(); err != nil {
				return err
			}
			rowsSince, checkAt = 0, a.ngrp
		}
	}
	a.in.close()
	if err := a.account(); err != nil {
		return err
	}
	return a.finish()
}

func (a *aggregateOp) account() error {
	var n int64
	if a.table != nil {
		n += a.table.size()
	}
	for _, acc := range a.accs {
		n += acc.Bytes()
	}
	return a.acct.set(n)
}

// update folds one batch into the groups.
func (a *aggregateOp) update(rec arrow.Record) error {
	n := int(rec.NumRows())
	if cap(a.ids) < n {
		a.ids = make([]uint32, n)
	}
	ids := a.ids[:n]
	if a.table != nil {
		keys := make([]arrow.Array, len(a.groups))
		for i, g := range a.groups {
			keys[i] = rec.Column(g)
		}
		a.table.insert(keys, n, ids)
		if g := a.table.len(); g > a.ngrp {
			a.ngrp = g
			for _, acc := range a.accs {
				acc.Resize(g)
			}
		}
	} else {
		clear(ids)
	}
	if a.node.Mode == plan.AggFinal {
		for k, acc := range a.accs {
			off, data := funcs.StringParts(rec.Column(a.states[k]))
			for i, g := range ids {
				if err := acc.MergeState(int(g), data[off[i]:off[i+1]]); err != nil {
					return fmt.Errorf("%s: %w", a.node.Aggs[k].Name, err)
				}
			}
		}
		return nil
	}
	for k, acc := range a.accs {
		args := a.argv[:0]
		for _, ev := range a.args[k] {
			v, err := ev.eval(a.q.fctx, rec)
			if err != nil {
				return fmt.Errorf("%s: %w", a.node.Aggs[k].Name, err)
			}
			args = append(args, v)
		}
		a.argv = args
		if err := acc.Update(a.q.fctx, args, ids, n); err != nil {
			return fmt.Errorf("%s: %w", a.node.Aggs[k].Name, err)
		}
	}
	return nil
}

// finish computes the output columns.
func (a *aggregateOp) finish() error {
	var cols []arrow.Array
	if a.table != nil {
		cols = append(cols, a.table.keys()...)
	}
	for k, acc := range a.accs {
		if a.node.Mode == plan.AggPartial {
			sb := funcs.NewStringsBuilder(a.ngrp, 16)
			for g := 0; g < a.ngrp; g++ {
				sb.AppendBytes(acc.State(g))
			}
			cols = append(cols, sb.Finish())
			continue
		}
		v, err := acc.Finalize(a.q.fctx, a.ngrp)
		if err != nil {
			return fmt.Errorf("exec: %s: %s: %w", a.name, a.node.Aggs[k].Name, err)
		}
		arr, err := funcs.MakeArray(v, a.node.Aggs[k].T, a.ngrp)
		if err != nil {
			return fmt.Errorf("exec: %s: %s: %w", a.name, a.node.Aggs[k].Name, err)
		}
		cols = append(cols, arr)
	}
	for i, c := range cols {
		if !arrow.TypeEqual(c.DataType(), a.schema.Field(i).Type) {
			return fmt.Errorf("exec: %s: column %s is %v, the plan says %v", a.name, a.schema.Field(i).Name, c.DataType(), a.schema.Field(i).Type)
		}
	}
	a.out, a.rows = cols, a.ngrp
	a.table, a.accs = nil, nil
	return nil
}

func (a *aggregateOp) close() {
	if !a.done {
		a.in.close()
		a.done = true
	}
	a.out, a.table, a.accs = nil, nil, nil
	a.rows = 0
	a.acct.release()
}
