package exec

import (
	"context"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// A full aggregate grouping by string columns of a file scan groups by
// codes instead: the scan numbers the column's values with a table.Dict
// (a Parquet dictionary page once, not every row) and hands on INT64
// codes, the aggregate hashes integers, and its output turns the codes
// of its groups back into their strings. The groups, their order and
// every aggregate are those of grouping by the strings: codes and
// strings are one to one, and the rows are the same rows in the same
// order. It applies when nothing between the scan and the aggregate
// reads the column but to pass it on (maps passing it through, filters
// and the scan's filter not reading it) and the aggregate's functions
// read it only to count.

// codedAggregate returns the operator of a as described above, or nil
// when a does not qualify.
func (q *query) codedAggregate(a *plan.Aggregate) (operator, error) {
	if a.Mode != plan.AggFull || len(a.Groups) == 0 || q.opts.Store == nil {
		return nil, nil
	}
	// The chain from the aggregate's input down to the scan.
	var chain []plan.Node
	var scan *plan.Scan
	for cur := a.Input; scan == nil; {
		if q.parents[cur] > 1 {
			return nil, nil
		}
		switch x := cur.(type) {
		case *plan.Map, *plan.Filter:
			chain = append(chain, x)
			cur = x.Children()[0]
		case *plan.Scan:
			scan = x
		default:
			return nil, nil
		}
	}
	if t := q.opts.Store.Table(scan.Table); t == nil || len(t.Files()) == 0 {
		return nil, nil
	}
	// coded[l] is the set of names coded at level l of the chain (0: the
	// aggregate's input, len(chain): the scan's output).
	coded := make([]map[string]bool, len(chain)+1)
	for i := range coded {
		coded[i] = map[string]bool{}
	}
	rel := a.Input.Relation()
	for _, g := range a.Groups {
		if i := rel.Index(g); i < 0 || rel[i].Type != types.String || !onlyCounted(a, g) {
			continue
		}
		if path, ok := passedThrough(g, chain, scan); ok {
			for l, name := range path {
				coded[l][name] = true
			}
		}
	}
	if len(coded[0]) == 0 {
		return nil, nil
	}
	// The same plan with the coded columns as INT64.
	s := *scan
	s.Rel = retype(scan.Rel, coded[len(chain)])
	dicts := map[string]*table.Dict{}
	for name := range coded[len(chain)] {
		dicts[name] = table.NewDict()
	}
	if q.coded == nil {
		q.coded = map[*plan.Scan]map[string]*table.Dict{}
	}
	q.coded[&s] = dicts
	below := recodeChain(chain, coded, &s)
	na := *a
	na.Input = below
	na.Aggs = make([]plan.AggExpr, len(a.Aggs))
	for i, x := range a.Aggs {
		if c, ok := x.Args[0].(*plan.Column); ok && len(x.Args) == 1 && coded[0][c.Name] {
			cc := *c
			cc.T = types.Int64
			x.Args = []plan.Expr{&cc}
		}
		na.Aggs[i] = x
	}
	op, err := q.buildNode(&na)
	if err != nil {
		return nil, err
	}
	// The output's coded group columns, by position, and their Dicts
	// (through the chain, a group's name at the scan).
	k := &keysOp{in: op, schema: a.Relation().ArrowSchema(), dicts: make([]*table.Dict, len(a.Groups))}
	for i, g := range a.Groups {
		if coded[0][g] {
			path, _ := passedThrough(g, chain, scan)
			k.dicts[i] = dicts[path[len(path)-1]]
		}
	}
	return k, nil
}

// onlyCounted reports whether a's functions read column g only to count.
func onlyCounted(a *plan.Aggregate, g string) bool {
	for _, x := range a.Aggs {
		for _, arg := range x.Args {
			for _, c := range plan.Columns(arg) {
				if c != g {
					continue
				}
				if _, isCol := arg.(*plan.Column); x.Func != "count" || !isCol || len(x.Args) != 1 {
					return false
				}
			}
		}
	}
	return true
}

// passedThrough follows name down the chain to the scan: each map must
// produce it as a column it passes through and read that column nowhere
// else, no filter may read it, and the scan must output it and not
// filter on it. It returns the name at each level.
func passedThrough(name string, chain []plan.Node, scan *plan.Scan) ([]string, bool) {
	path := []string{name}
	for _, n := range chain {
		switch x := n.(type) {
		case *plan.Map:
			src := ""
			for _, e := range x.Exprs {
				if e.Name == name {
					c, ok := e.Expr.(*plan.Column)
					if !ok {
						return nil, false
					}
					src = c.Name
				}
			}
			if src == "" {
				return nil, false
			}
			for _, e := range x.Exprs {
				if e.Name == name {
					continue
				}
				for _, c := range plan.Columns(e.Expr) {
					if c == src {
						return nil, false
					}
				}
			}
			name = src
		case *plan.Filter:
			for _, c := range plan.Columns(x.Cond) {
				if c == name {
					return nil, false
				}
			}
		}
		path = append(path, name)
	}
	if scan.Rel.Index(name) < 0 {
		return nil, false
	}
	if scan.Filter != nil {
		for _, c := range plan.Columns(scan.Filter) {
			if c == name {
				return nil, false
			}
		}
	}
	return path, true
}

// retype returns rel with the named columns as INT64.
func retype(rel types.Relation, names map[string]bool) types.Relation {
	out := append(types.Relation(nil), rel...)
	for i, c := range out {
		if names[c.Name] {
			out[i].Type = types.Int64
		}
	}
	return out
}

// keysOp turns the code columns of an aggregate's groups back into their
// strings.
type keysOp struct {
	in     operator
	schema *arrow.Schema
	dicts  []*table.Dict // per group column, nil if not coded
}

func (k *keysOp) next(ctx context.Context) (arrow.Record, error) {
	rec, err := k.in.next(ctx)
	if rec == nil || err != nil {
		return nil, err
	}
	cols := append([]arrow.Array(nil), rec.Columns()...)
	for i, d := range k.dicts {
		if d != nil {
			cols[i] = d.Strings(funcs.Int64s(cols[i]))
		}
	}
	return newRecord(k.schema, cols, rec.NumRows()), nil
}

func (k *keysOp) close() { k.in.close() }
