package format

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

// Stream writes a query's tables as CSV or JSON rows while the query
// runs, batch by batch, instead of holding the whole result: it has the
// methods of exec.Output (Table, Batch, Done), and writes what CSV and
// JSON write for a Table, the same bytes, with the same marker after a
// table cut at the row cap (see Done). Tables must come one after the
// other, as the executor sends them.
type Stream struct {
	w      *bufio.Writer
	csv    bool
	titled bool

	cur     string
	names   []string
	cells   []string
	cw      *csv.Writer
	enc     *json.Encoder
	summary []Streamed
}

// Streamed is what a Stream wrote of one table.
type Streamed struct {
	Name      string
	Rows      int64
	Truncated bool
}

// NewCSVStream returns a Stream of CSV; titled starts each table with a
// "# table: NAME" line, as CSV does for several tables in one stream.
func NewCSVStream(w io.Writer, titled bool) *Stream {
	return &Stream{w: bufio.NewWriterSize(w, 64<<10), csv: true, titled: titled}
}

// NewJSONStream returns a Stream of JSON objects, one per row.
func NewJSONStream(w io.Writer) *Stream {
	s := &Stream{w: bufio.NewWriterSize(w, 64<<10)}
	s.enc = json.NewEncoder(s.w)
	s.enc.SetEscapeHTML(false)
	return s
}

// Table starts a table.
func (s *Stream) Table(name string, rel types.Relation) error {
	if s.cur != "" {
		return fmt.Errorf("format: table %s starts before table %s is done", name, s.cur)
	}
	s.cur, s.names = name, rel.Names()
	s.summary = append(s.summary, Streamed{Name: name})
	if !s.csv {
		return nil
	}
	if s.titled {
		if _, err := fmt.Fprintf(s.w, "# table: %s\n", name); err != nil {
			return err
		}
	}
	s.cw = csv.NewWriter(s.w)
	s.cells = make([]string, len(rel))
	return s.cw.Write(s.names)
}

// Batch writes a batch's rows.
func (s *Stream) Batch(name string, rec arrow.Record) error {
	if name != s.cur {
		return fmt.Errorf("format: batch of table %s within table %s", name, s.cur)
	}
	s.summary[len(s.summary)-1].Rows += rec.NumRows()
	if s.csv {
		if err := csvRows(s.cw, s.cells, rec); err != nil {
			return err
		}
		s.cw.Flush() // into s.w, which writes when full
		return s.cw.Error()
	}
	return jsonRows(s.enc, name, s.names, rec)
}

// Done ends a table. A table cut at the row cap ends with a marker: in
// CSV the line "# table NAME: cut at N rows", in JSON the object
// {"_table": NAME, "_truncated": true, "_rows": N}.
func (s *Stream) Done(name string, truncated bool) error {
	if name != s.cur {
		return fmt.Errorf("format: end of table %s within table %s", name, s.cur)
	}
	t := &s.summary[len(s.summary)-1]
	t.Truncated = truncated
	s.cur = ""
	if s.csv {
		s.cw.Flush()
		if err := s.cw.Error(); err != nil {
			return err
		}
	}
	if truncated {
		if err := TruncationMarker(s.w, s.csvOrJSON(), t.Name, t.Rows); err != nil {
			return err
		}
	}
	return s.w.Flush()
}

func (s *Stream) csvOrJSON() string {
	if s.csv {
		return "csv"
	}
	return "json"
}

// Flush writes what is buffered (Done does at the end of each table).
func (s *Stream) Flush() error { return s.w.Flush() }

// Tables returns what was written of each table, in order.
func (s *Stream) Tables() []Streamed { return s.summary }

// TruncationMarker writes the marker that follows a table cut at the row
// cap after rows rows, in output "csv" or "json".
func TruncationMarker(w io.Writer, output, table string, rows int64) error {
	var err error
	switch output {
	case "json":
		name, _ := json.Marshal(table)
		_, err = fmt.Fprintf(w, "{\"_table\":%s,\"_truncated\":true,\"_rows\":%d}\n", name, rows)
	case "csv":
		_, err = fmt.Fprintf(w, "# table %s: cut at %d rows\n", table, rows)
	}
	return err
}
