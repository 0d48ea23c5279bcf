package table_test

import (
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/table"
)

// BenchmarkParquetWriter measures how fast a capture spills rows of
// http_events to Parquet (bytes are the store's bytes of the rows).
func BenchmarkParquetWriter(b *testing.B) {
	rel := http.Table.Relation()
	s := table.NewStore(0)
	tb, err := s.Create("http_events", rel, table.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := table.NewWriter(tb)
	for i := 0; i < 8192; i++ {
		if err := w.AppendRow(httpRow(i)...); err != nil {
			b.Fatal(err)
		}
	}
	w.Flush()
	batch := tb.Snapshot(0, 0)[0]
	pw, err := table.NewParquetWriter(filepath.Join(b.TempDir(), "t.parquet"), rel)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(batch.Bytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pw.Write([]arrow.Record{batch.Record}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := pw.Close(); err != nil {
		b.Fatal(err)
	}
}
