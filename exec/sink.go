package exec

import (
	"context"
	"fmt"

	"github.com/pxq-dev/pxq/plan"
)

// runSink pulls every batch of a sink's input and hands it to out,
// cutting the table at MaxRowsPerTable rows.
func (q *query) runSink(ctx context.Context, s *plan.Sink, in operator, out Output) error {
	name := opName(s)
	defer in.close()
	rel := s.Relation()
	schema := rel.ArrowSchema()
	if err := out.Table(s.Name, rel); err != nil {
		return fmt.Errorf("exec: %s: %w", name, err)
	}
	max := q.opts.MaxRowsPerTable
	if s.OTel != nil {
		// The cap is for tables shown to a client; an export's receiver
		// bounds what it takes.
		max = 0
	}
	var rows int64
	truncated := false
	for {
		rec, err := in.next(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		if max > 0 && rows >= max {
			truncated = true
			break
		}
		if max > 0 && rows+rec.NumRows() > max {
			rec = sliceRecord(schema, rec, 0, max-rows)
			truncated = true
		} else if rec.Schema() != schema {
			rec = sliceRecord(schema, rec, 0, rec.NumRows())
		}
		rows += rec.NumRows()
		if err := out.Batch(s.Name, rec); err != nil {
			return fmt.Errorf("exec: %s: %w", name, err)
		}
		if truncated {
			break
		}
	}
	if err := out.Done(s.Name, truncated); err != nil {
		return fmt.Errorf("exec: %s: %w", name, err)
	}
	return nil
}
