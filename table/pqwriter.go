package table

import (
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/pxq-dev/pxq/types"
)

// rowGroupRows is the most rows of one Parquet row group pxq writes: the
// unit a file scan skips by its statistics or decodes on one core.
const rowGroupRows = 64 * 1024

// ParquetWriter writes a table's rows to a Parquet file as they come,
// each Write adding row groups, so that a long recording is bounded by
// disk rather than memory. The file is readable (a FileTable opens it)
// once Close has written its footer.
type ParquetWriter struct {
	path   string
	f      *os.File
	w      *pqarrow.FileWriter
	schema *arrow.Schema
	rows   int64
}

// NewParquetWriter creates (or truncates) the file path for rows of rel,
// written as WriteFile writes Parquet: Snappy, with the Arrow schema
// stored so that semantic types and UINT128 columns read back as they
// were.
func NewParquetWriter(path string, rel types.Relation) (*ParquetWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	schema := rel.ArrowSchema()
	// The pqarrow writer closes what it writes to; keep f for our Close.
	w, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{f}, parquetProps(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &ParquetWriter{path: path, f: f, w: w, schema: schema}, nil
}

func parquetProps() *parquet.WriterProperties {
	return parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy))
}

// Write appends the rows of recs, which have the writer's relation, as
// row groups of at most 64 Ki rows.
func (p *ParquetWriter) Write(recs []arrow.Record) error {
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	if n == 0 {
		return nil
	}
	tbl := array.NewTableFromRecords(p.schema, recs)
	defer tbl.Release()
	if err := p.w.WriteTable(tbl, rowGroupRows); err != nil {
		return fmt.Errorf("%s: %w", p.path, err)
	}
	p.rows += n
	return nil
}

// Rows returns the rows written so far.
func (p *ParquetWriter) Rows() int64 { return p.rows }

// Close writes the file's footer and closes it.
func (p *ParquetWriter) Close() error {
	err := p.w.Close()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.path, err)
	}
	return nil
}
