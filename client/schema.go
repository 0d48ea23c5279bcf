package client

import (
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// withSchema relabels rec with rel's Arrow schema (names, semantic types
// in field metadata) when the column types agree.
func withSchema(rec arrow.Record, rel types.Relation) arrow.Record {
	if int(rec.NumCols()) != len(rel) {
		return rec
	}
	for i, c := range rel {
		if !arrow.TypeEqual(rec.Column(i).DataType(), c.Type.Arrow()) {
			return rec
		}
	}
	return array.NewRecord(rel.ArrowSchema(), rec.Columns(), rec.NumRows())
}
