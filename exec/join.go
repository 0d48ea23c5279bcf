package exec

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// joinOp is the hash join. It reads the whole build side into one set of
// columns and a key table whose ids head chains of build rows, then
// streams the probe side, emitting matched pairs in probe order (build
// order within a key). The build side is the right input, except for a
// right join, which runs as a left join with the inputs swapped.
// Unmatched rows of an outer side get zero values in the other side's
// columns. Output batches hold at most Options.BatchSize rows, however
// many rows one key matches.
type joinOp struct {
	q     *query
	name  string
	node  *plan.Join
	build operator
	probe operator
	// Key columns on each side (indices into the side's relation).
	buildKeys, probeKeys []int
	keyTs                []types.DataType
	// keepProbe: unmatched probe rows are emitted (left/right/outer);
	// keepBuild: unmatched build rows are emitted at the end (outer).
	keepProbe, keepBuild bool
	// Output columns: from the probe side (true) or the build side, and
	// the column index there.
	outProbe []bool
	outCol   []int
	schema   *arrow.Schema
	acct     account

	built     bool
	table     keyTable
	head      []int32 // first build row of each key id
	tail      []int32
	nextRow   []int32 // next build row with the same key, -1 at the end
	matched   []bool  // build rows matched (keepBuild)
	buildBufs []*colBuf
	buildCols []arrow.Array // the build side's columns (those output)
	buildRel  types.Relation
	buildSrc  []int // build-side input column of each buildBufs entry
	// buildCodes code the build side's string keys (dictjoin.go): per
	// key, a Dict or nil.
	buildCodes []*table.Dict
	probeRel   types.Relation

	// Probe state: the current batch, its key ids, the row being joined
	// and the build row to continue from (-2: row not started).
	cur      arrow.Record
	curIDs   []int32
	row      int
	chain    int32
	probeEOF bool
	tailPos  int // next build row to check for the outer tail
	pi, bi   []int32
}

func (q *query) newJoin(n *plan.Join) (operator, error) {
	name := opName(n)
	if len(n.LeftOn) != len(n.RightOn) {
		return nil, fmt.Errorf("exec: %s: %d left keys and %d right keys", name, len(n.LeftOn), len(n.RightOn))
	}
	j := &joinOp{q: q, name: name, node: n, schema: n.Relation().ArrowSchema(), acct: account{b: q.mem, op: name}, chain: -2}
	lrel, rrel := n.Left.Relation(), n.Right.Relation()
	probeSide := 0
	probeNode, buildNode := n.Left, n.Right
	probeOn, buildOn := n.LeftOn, n.RightOn
	prel, brel := lrel, rrel
	switch n.How {
	case plan.InnerJoin:
	case plan.LeftJoin:
		j.keepProbe = true
	case plan.RightJoin:
		probeSide = 1
		probeNode, buildNode = n.Right, n.Left
		probeOn, buildOn = n.RightOn, n.LeftOn
		prel, brel = rrel, lrel
		j.keepProbe = true
	case plan.OuterJoin:
		j.keepProbe, j.keepBuild = true, true
	default:
		return nil, fmt.Errorf("exec: %s: unknown join type %v", name, n.How)
	}
	codes := q.joinCodes[n] // dictjoin.go; only for the left side as probe
	if codes != nil {
		j.buildCodes = codes
	}
	for k := range probeOn {
		pi, bi := prel.Index(probeOn[k]), brel.Index(buildOn[k])
		if pi < 0 || bi < 0 {
			return nil, fmt.Errorf("exec: %s: unknown key column %q or %q", name, probeOn[k], buildOn[k])
		}
		if codes != nil && codes[k] != nil {
			// Codes on the probe side, strings to code on the build side.
			if prel[pi].Type != types.Int64 || brel[bi].Type != types.String || probeSide != 0 {
				return nil, fmt.Errorf("exec: %s: coded key %s is %v and %v", name, probeOn[k], prel[pi].Type, brel[bi].Type)
			}
			j.probeKeys = append(j.probeKeys, pi)
			j.buildKeys = append(j.buildKeys, bi)
			j.keyTs = append(j.keyTs, types.Int64)
			continue
		}
		if !compatibleKeys(prel[pi].Type, brel[bi].Type) {
			return nil, fmt.Errorf("exec: %s: key %s is %v on one side and %v on the other", name, probeOn[k], prel[pi].Type, brel[bi].Type)
		}
		j.probeKeys = append(j.probeKeys, pi)
		j.buildKeys = append(j.buildKeys, bi)
		j.keyTs = append(j.keyTs, brel[bi].Type)
	}
	// The build side keeps only the columns that are output.
	buildIdx := map[int]int{}
	for _, c := range n.Output {
		rel := lrel
		if c.Side == 1 {
			rel = rrel
		}
		i := rel.Index(c.Name)
		if i < 0 {
			return nil, fmt.Errorf("exec: %s: output column %q is not on side %d", name, c.Name, c.Side)
		}
		isProbe := c.Side == probeSide
		j.outProbe = append(j.outProbe, isProbe)
		if isProbe {
			j.outCol = append(j.outCol, i)
			continue
		}
		k, ok := buildIdx[i]
		if !ok {
			k = len(j.buildRel)
			buildIdx[i] = k
			j.buildRel = append(j.buildRel, brel[i])
			j.buildBufs = append(j.buildBufs, newColBuf(brel[i].Type))
		}
		j.outCol = append(j.outCol, k)
	}
	j.probeRel = prel
	j.buildSrc = make([]int, len(j.buildRel))
	for i, k := range buildIdx {
		j.buildSrc[k] = i
	}
	var err error
	if j.build, err = q.build(buildNode); err != nil {
		return nil, err
	}
	if j.probe, err = q.build(probeNode); err != nil {
		j.build.close()
		return nil, err
	}
	return j, nil
}

func (j *joinOp) next(ctx context.Context) (arrow.Record, error) {
	if !j.built {
		if err := j.buildSide(ctx); err != nil {
			return nil, err
		}
		j.built = true
	}
	for {
		if j.cur == nil && !j.probeEOF {
			rec, err := j.probe.next(ctx)
			if err != nil {
				return nil, err
			}
			if rec == nil {
				j.probeEOF = true
				j.probe.close()
			} else {
				j.startBatch(rec)
			}
		}
		if j.cur != nil {
			rec := j.joinBatch()
			if rec != nil {
				return rec, nil
			}
			continue
		}
		// Probe side done: the unmatched build rows of an outer join.
		if !j.keepBuild {
			return nil, nil
		}
		return j.buildTail(), nil
	}
}

func (j *joinOp) buildSide(ctx context.Context) error {
	j.table = newKeyTable(j.keyTs)
	var ids []uint32
	rows := int32(0)
	for {
		rec, err := j.build.next(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		n := int(rec.NumRows())
		if cap(ids) < n {
			ids = make([]uint32, n)
		}
		ids = ids[:n]
		keys := make([]arrow.Array, len(j.buildKeys))
		for i, k := range j.buildKeys {
			keys[i] = rec.Column(k)
			if j.buildCodes != nil && j.buildCodes[i] != nil {
				keys[i] = j.buildCodes[i].CodeArray(keys[i])
			}
		}
		j.table.insert(keys, n, ids)
		for len(j.head) < j.table.len() {
			j.head = append(j.head, -1)
			j.tail = append(j.tail, -1)
		}
		for _, id := range ids {
			r := rows
			rows++
			j.nextRow = append(j.nextRow, -1)
			if j.head[id] < 0 {
				j.head[id] = r
			} else {
				j.nextRow[j.tail[id]] = r
			}
			j.tail[id] = r
		}
		var size int64
		for k, b := range j.buildBufs {
			b.appendRows(rec.Column(j.buildSrc[k]), nil)
			size += b.size()
		}
		size += j.table.size() + int64(cap(j.head)+cap(j.tail)+cap(j.nextRow))*4
		if err := j.acct.set(size); err != nil {
			return err
		}
	}
	j.build.close()
	j.tail = nil
	j.buildCols = make([]arrow.Array, len(j.buildBufs))
	for k, b := range j.buildBufs {
		j.buildCols[k] = b.array()
	}
	if j.keepBuild {
		j.matched = make([]bool, rows)
	}
	return nil
}

func (j *joinOp) startBatch(rec arrow.Record) {
	n := int(rec.NumRows())
	if cap(j.curIDs) < n {
		j.curIDs = make([]int32, n)
	}
	j.curIDs = j.curIDs[:n]
	keys := make([]arrow.Array, len(j.probeKeys))
	for i, k := range j.probeKeys {
		keys[i] = rec.Column(k)
	}
	j.table.find(keys, n, j.curIDs)
	j.cur, j.row, j.chain = rec, 0, -2
}

// joinBatch emits up to BatchSize joined rows of the current probe batch,
// or nil (dropping the batch) when it has no more.
func (j *joinOp) joinBatch() arrow.Record {
	max := j.q.batch
	pi, bi := j.pi[:0], j.bi[:0]
	n := len(j.curIDs)
	for j.row < n && len(pi) < max {
		if j.chain == -2 {
			id := j.curIDs[j.row]
			if id < 0 {
				if j.keepProbe {
					pi = append(pi, int32(j.row))
					bi = append(bi, -1)
				}
				j.row++
				continue
			}
			j.chain = j.head[id]
		}
		for j.chain >= 0 && len(pi) < max {
			pi = append(pi, int32(j.row))
			bi = append(bi, j.chain)
			if j.matched != nil {
				j.matched[j.chain] = true
			}
			j.chain = j.nextRow[j.chain]
		}
		if j.chain < 0 {
			j.row++
			j.chain = -2
		}
	}
	j.pi, j.bi = pi, bi
	cur := j.cur
	if j.row >= n {
		j.cur = nil
	}
	if len(pi) == 0 {
		return nil
	}
	// Each probe row matched once (a many-to-one join): pi runs through
	// consecutive rows. (contiguous alone would take a row matched twice
	// and a row not matched for such a run.)
	run := contiguous(pi) && consecutive(pi)
	cols := make([]arrow.Array, len(j.outCol))
	for i, c := range j.outCol {
		switch {
		case j.outProbe[i] && run:
			cols[i] = sliceArray(cur.Column(c), int64(pi[0]), int64(pi[0])+int64(len(pi)))
		case j.outProbe[i]:
			cols[i] = takeArray(cur.Column(c), pi)
		default:
			cols[i] = takeArray(j.buildCols[c], bi)
		}
	}
	return newRecord(j.schema, cols, int64(len(pi)))
}

// consecutive reports whether idx[i] == idx[0]+i for every i.
func consecutive(idx []int32) bool {
	for i, x := range idx {
		if x != idx[0]+int32(i) {
			return false
		}
	}
	return true
}

// buildTail emits up to BatchSize unmatched build rows, or nil at the end.
func (j *joinOp) buildTail() arrow.Record {
	bi := j.bi[:0]
	for j.tailPos < len(j.matched) && len(bi) < j.q.batch {
		if !j.matched[j.tailPos] {
			bi = append(bi, int32(j.tailPos))
		}
		j.tailPos++
	}
	j.bi = bi
	if len(bi) == 0 {
		return nil
	}
	none := make([]int32, len(bi))
	for i := range none {
		none[i] = -1
	}
	cols := make([]arrow.Array, len(j.outCol))
	for i, c := range j.outCol {
		if j.outProbe[i] {
			cols[i] = zeroArray(j.probeRel[c].Type, len(bi))
		} else {
			cols[i] = takeArray(j.buildCols[c], bi)
		}
	}
	return newRecord(j.schema, cols, int64(len(bi)))
}

func (j *joinOp) close() {
	if !j.built {
		j.build.close()
	}
	if !j.probeEOF {
		j.probe.close()
		j.probeEOF = true
	}
	j.built = true
	j.table, j.buildBufs, j.buildCols, j.cur = nil, nil, nil, nil
	j.acct.release()
}

// zeroArray returns n zero values of type t.
func zeroArray(t types.DataType, n int) arrow.Array {
	a, err := funcs.MakeArray(funcs.Value{Const: funcs.ZeroValue(t)}, t, n)
	if err != nil {
		panic(err)
	}
	return a
}
