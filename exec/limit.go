package exec

import (
	"context"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/plan"
)

// limitOp passes the first N rows, then closes its input so that the
// operators upstream stop early.
type limitOp struct {
	in     operator
	left   int64
	schema *arrow.Schema
	closed bool
}

func (q *query) newLimit(n *plan.Limit) (operator, error) {
	in, err := q.build(n.Input)
	if err != nil {
		return nil, err
	}
	l := &limitOp{in: in, left: n.N, schema: n.Relation().ArrowSchema()}
	if l.left < 0 {
		l.left = 0
	}
	return l, nil
}

func (l *limitOp) next(ctx context.Context) (arrow.Record, error) {
	if l.left <= 0 {
		l.stop()
		return nil, nil
	}
	rec, err := l.in.next(ctx)
	if rec == nil || err != nil {
		return nil, err
	}
	if rec.NumRows() >= l.left {
		rec = sliceRecord(l.schema, rec, 0, l.left)
		l.left = 0
		l.stop()
		return rec, nil
	}
	l.left -= rec.NumRows()
	return rec, nil
}

func (l *limitOp) stop() {
	if !l.closed {
		l.closed = true
		l.in.close()
	}
}

func (l *limitOp) close() { l.stop() }
