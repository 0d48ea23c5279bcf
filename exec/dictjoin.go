package exec

import (
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// A full aggregate over a join whose probe side scans files joins on
// codes, as it groups on them (dictkeys.go): a string key of the probe
// side that is passed through from the scan, and that the join does not
// output, comes from the scan as INT64 codes of a table.Dict; the join
// codes its build side's key strings with the same Dict (adding those
// the scan has not met yet, so that a later row with the string gets the
// same code), and its key table hashes integers. Codes and strings are
// one to one, so the same rows match, in the same order.

// codeJoinKeys returns a rewritten as described above, or a itself when
// it does not qualify.
func (q *query) codeJoinKeys(a *plan.Aggregate) *plan.Aggregate {
	if a.Mode != plan.AggFull || q.opts.Store == nil {
		return a
	}
	// Maps and filters from the aggregate down to the join.
	var above []plan.Node
	var j *plan.Join
	for cur := a.Input; j == nil; {
		if q.parents[cur] > 1 {
			return a
		}
		switch x := cur.(type) {
		case *plan.Map, *plan.Filter:
			above = append(above, x)
			cur = x.Children()[0]
		case *plan.Join:
			j = x
		default:
			return a
		}
	}
	if j.How != plan.InnerJoin && j.How != plan.LeftJoin {
		return a
	}
	// The probe side (left) down to its scan.
	var chain []plan.Node
	var scan *plan.Scan
	for cur := j.Left; scan == nil; {
		if q.parents[cur] > 1 {
			return a
		}
		switch x := cur.(type) {
		case *plan.Map, *plan.Filter:
			chain = append(chain, x)
			cur = x.Children()[0]
		case *plan.Scan:
			scan = x
		default:
			return a
		}
	}
	if t := q.opts.Store.Table(scan.Table); t == nil || len(t.Files()) == 0 || q.coded[scan] != nil {
		return a
	}
	lrel, rrel := j.Left.Relation(), j.Right.Relation()
	coded := make([]map[string]bool, len(chain)+1)
	for i := range coded {
		coded[i] = map[string]bool{}
	}
	keyCoded := make([]bool, len(j.LeftOn))
	for k, name := range j.LeftOn {
		li, ri := lrel.Index(name), rrel.Index(j.RightOn[k])
		if li < 0 || ri < 0 || lrel[li].Type != types.String || rrel[ri].Type != types.String || outputs(j, 0, name) {
			continue
		}
		path, ok := passedThrough(name, chain, scan)
		if !ok {
			continue
		}
		for l, n := range path {
			coded[l][n] = true
		}
		keyCoded[k] = true
	}
	if len(coded[0]) == 0 {
		return a
	}
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
	nj := &plan.Join{Left: recodeChain(chain, coded, &s), Right: j.Right, How: j.How, LeftOn: j.LeftOn, RightOn: j.RightOn,
		Output: j.Output, Pos: j.Pos}
	jd := make([]*table.Dict, len(j.LeftOn))
	for k, name := range j.LeftOn {
		if keyCoded[k] {
			path, _ := passedThrough(name, chain, scan)
			jd[k] = dicts[path[len(path)-1]]
		}
	}
	if q.joinCodes == nil {
		q.joinCodes = map[*plan.Join][]*table.Dict{}
	}
	q.joinCodes[nj] = jd
	// The nodes above the join, over the new join: they do not read the
	// key (the join does not output it), so only their inputs change.
	var below plan.Node = nj
	for l := len(above) - 1; l >= 0; l-- {
		switch x := above[l].(type) {
		case *plan.Map:
			m := *x
			m.Input = below
			below = &m
		case *plan.Filter:
			f := *x
			f.Input = below
			below = &f
		}
	}
	na := *a
	na.Input = below
	return &na
}

// outputs reports whether join j outputs column name of side.
func outputs(j *plan.Join, side int, name string) bool {
	for _, c := range j.Output {
		if c.Side == side && c.Name == name {
			return true
		}
	}
	return false
}

// recodeChain copies chain (from the top down to the scan, which becomes
// s) with the columns named in coded[l] at level l as INT64 (see
// codedAggregate) and returns its top.
func recodeChain(chain []plan.Node, coded []map[string]bool, s *plan.Scan) plan.Node {
	var below plan.Node = s
	for l := len(chain) - 1; l >= 0; l-- {
		switch x := chain[l].(type) {
		case *plan.Map:
			m := *x
			m.Input = below
			m.Exprs = make([]plan.NamedExpr, len(x.Exprs))
			for i, e := range x.Exprs {
				if coded[l][e.Name] {
					c := *e.Expr.(*plan.Column)
					c.T = types.Int64
					e.Expr = &c
				}
				m.Exprs[i] = e
			}
			below = &m
		case *plan.Filter:
			f := *x
			f.Input = below
			below = &f
		}
	}
	return below
}
