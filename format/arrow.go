package format

import (
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
)

// recordWithSchema relabels a record's columns with schema s (same types).
func recordWithSchema(r arrow.Record, s *arrow.Schema) arrow.Record {
	return array.NewRecord(s, r.Columns(), r.NumRows())
}
