package exec

import (
	"context"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/plan"
)

// Where a plan allows it, the operators over a scan run per part of the
// scan (a unit of a file, or a run of in-memory batches) on several
// goroutines: a chain of maps, filters and joins (the scan on their
// probe side, their build side a small table, built again for every
// part) over the scan, optionally under a full aggregate. Each goroutine
// runs the chain on the parts it takes; a pump hands their
// output back in part order. An aggregate becomes the same partial/final
// pair the distributed split makes (planner.Split): a partial aggregate
// per part, and one final aggregate merging the parts' states in part
// order. Merging in part order keeps the groups in the order a single
// goroutine finds them, and makes the result the same whatever the
// number of goroutines; with one (Options.Parallelism = 1, or
// GOMAXPROCS=1) nothing of this runs and the plan executes as written.

// parallelChain returns the operator that runs n (a map, a filter or a
// full aggregate over a chain of maps and filters down to a scan)
// per part on q.workers goroutines, or nil when n is not such a chain, is
// not worth it, or the plan shares a node of the chain.
func (q *query) parallelChain(n plan.Node) (operator, error) {
	if q.workers <= 1 || q.opts.Store == nil {
		return nil, nil
	}
	agg, _ := n.(*plan.Aggregate)
	if agg != nil && agg.Mode != plan.AggFull {
		return nil, nil
	}
	below := n
	if agg != nil {
		below = agg.Input
	}
	var scan *plan.Scan
	for cur := below; scan == nil; {
		if cur != n && q.parents[cur] > 1 {
			return nil, nil
		}
		switch x := cur.(type) {
		case *plan.Map, *plan.Filter:
			cur = x.Children()[0]
		case *plan.Join:
			// Through a join's probe side, when its build side is small
			// enough to build again for every part.
			probe, build := x.Left, x.Right
			if x.How == plan.RightJoin {
				probe, build = x.Right, x.Left
			}
			if x.How == plan.OuterJoin || !q.smallSide(build) {
				return nil, nil
			}
			cur = probe
		case *plan.Scan:
			scan = x
		default:
			return nil, nil
		}
	}
	if scan.Limit > 0 || q.opts.Store == nil {
		return nil, nil
	}
	// A table in memory only runs in parts too: its batches are split
	// into parts of memPartRows (planFileScan).
	t := q.opts.Store.Table(scan.Table)
	if t == nil {
		return nil, nil
	}
	fp, err := q.planFileScan(scan, t)
	if err != nil {
		return nil, err
	}
	workers := min(q.workers, len(fp.parts))
	if workers <= 1 {
		return nil, nil
	}
	// What each part runs: the chain, under a partial aggregate.
	top := n
	var partial *plan.Aggregate
	if agg != nil {
		p := *agg
		p.Mode = plan.AggPartial
		partial = &p
		top = partial
	}
	wqs := make([]*query, workers)
	kits := make([]*scanKit, workers)
	for w := range wqs {
		wqs[w] = q.forWorker()
		if kits[w], err = wqs[w].newScanKit(fp); err != nil {
			return nil, err
		}
	}
	pm := newPump(len(fp.parts), workers, func(ctx context.Context, w, i int, emit func(arrow.Record) error) error {
		wq := wqs[w]
		wq.sources = map[plan.Node]operator{scan: kits[w].reader(&fp.parts[i])}
		// top itself, not a reader of the tee that the plan's other
		// parents of top share (that is the caller's).
		op, err := wq.buildNode(top)
		if err != nil {
			return err
		}
		defer op.close()
		for {
			rec, err := op.next(ctx)
			if err != nil || rec == nil {
				return err
			}
			if err := emit(rec); err != nil {
				return err
			}
		}
	})
	src := &pumpOp{pump: pm}
	if agg == nil {
		return src, nil
	}
	final := *agg
	final.Mode = plan.AggFinal
	final.Input = partial
	if q.sources == nil {
		q.sources = map[plan.Node]operator{}
	}
	q.sources[partial] = src
	return q.newAggregate(&final)
}

// smallBuild is the most rows a join's build side may have for a
// parallel chain to build it for every part.
const smallBuild = 1 << 16

// smallSide reports whether n is a chain of maps and filters over a scan
// of at most smallBuild rows, which nothing else in the plan reads.
func (q *query) smallSide(n plan.Node) bool {
	for {
		if q.parents[n] > 1 {
			return false
		}
		switch x := n.(type) {
		case *plan.Map, *plan.Filter:
			n = x.Children()[0]
		case *plan.Scan:
			t := q.opts.Store.Table(x.Table)
			return t != nil && t.Stats().Rows <= smallBuild
		default:
			return false
		}
	}
}

// forWorker returns a query for one goroutine of a parallel chain: the
// same options, context, memory budget and plan, its own operators, and
// no further parallelism.
func (q *query) forWorker() *query {
	w := *q
	w.tees = map[plan.Node]*tee{}
	w.sources = nil
	w.workers = 1
	return &w
}

// pumpOp is a pump as an operator.
type pumpOp struct{ pump *pump }

func (p *pumpOp) next(ctx context.Context) (arrow.Record, error) { return p.pump.next(ctx) }
func (p *pumpOp) close()                                         { p.pump.close() }
