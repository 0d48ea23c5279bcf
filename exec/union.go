package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/plan"
)

// unionOp passes the batches of each input in turn, with the columns
// reordered by name into the first input's order.
type unionOp struct {
	ins    []operator
	perm   [][]int // per input: input column of each output column
	cur    int
	schema *arrow.Schema
}

func (q *query) newUnion(n *plan.Union) (operator, error) {
	name := opName(n)
	if len(n.Inputs) == 0 {
		return nil, fmt.Errorf("exec: %s: no inputs", name)
	}
	rel := n.Relation()
	u := &unionOp{schema: rel.ArrowSchema()}
	for k, in := range n.Inputs {
		irel := in.Relation()
		if len(irel) != len(rel) {
			u.close()
			return nil, fmt.Errorf("exec: %s: input %d has columns %v, want %v", name, k, irel.Names(), rel.Names())
		}
		perm := make([]int, len(rel))
		for i, c := range rel {
			j := irel.Index(c.Name)
			if j < 0 || irel[j].Type != c.Type {
				u.close()
				return nil, fmt.Errorf("exec: %s: input %d has columns %v, want %v", name, k, irel, rel)
			}
			perm[i] = j
		}
		op, err := q.build(in)
		if err != nil {
			u.close()
			return nil, err
		}
		u.ins = append(u.ins, op)
		u.perm = append(u.perm, perm)
	}
	return u, nil
}

func (u *unionOp) next(ctx context.Context) (arrow.Record, error) {
	for u.cur < len(u.ins) {
		rec, err := u.ins[u.cur].next(ctx)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			u.ins[u.cur].close()
			u.cur++
			continue
		}
		cols := make([]arrow.Array, len(u.perm[u.cur]))
		for i, j := range u.perm[u.cur] {
			cols[i] = rec.Column(j)
		}
		return newRecord(u.schema, cols, rec.NumRows()), nil
	}
	return nil, nil
}

func (u *unionOp) close() {
	for ; u.cur < len(u.ins); u.cur++ {
		u.ins[u.cur].close()
	}
}
