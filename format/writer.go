package format

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/pxq-dev/pxq/types"
)

// Table is one output table of a query.
type Table struct {
	Name      string
	Relation  types.Relation
	Records   []arrow.Record
	Truncated bool // cut at the row cap
}

// Rows returns the table's row count.
func (t *Table) Rows() int64 {
	var n int64
	for _, r := range t.Records {
		n += r.NumRows()
	}
	return n
}

// Options tune text output.
type Options struct {
	// MaxWidth caps a text cell's width in characters (0: 60). Longer
	// values are cut with "…".
	MaxWidth int
	// Raw prints values without semantic formatting.
	Raw bool
}

// Text writes t as an aligned table with a title line.
func Text(w io.Writer, t *Table, opts Options) error {
	maxw := opts.MaxWidth
	if maxw == 0 {
		maxw = 60
	}
	header := t.Relation.Names()
	numeric := make([]bool, len(header))
	for i, c := range t.Relation {
		numeric[i] = c.Type == types.Int64 || c.Type == types.Float64
	}
	var rows [][]string
	for _, rec := range t.Records {
		for r := 0; r < int(rec.NumRows()); r++ {
			row := make([]string, len(header))
			for c := range header {
				v := Value(rec.Column(c), r)
				var s string
				if opts.Raw {
					s = fmt.Sprint(v)
				} else {
					s = Cell(v, t.Relation[c].Semantic)
				}
				if t.Relation[c].Type == types.String {
					s = clip(oneLine(s), maxw) // only free text is cut
				}
				row[c] = s
			}
			rows = append(rows, row)
		}
	}
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range rows {
		for i, s := range row {
			if n := utf8.RuneCountInString(s); n > widths[i] {
				widths[i] = n
			}
		}
	}
	var b strings.Builder
	title := fmt.Sprintf("%s (%d rows)", t.Name, len(rows))
	if t.Truncated {
		title = fmt.Sprintf("%s (%d rows, cut at the row cap)", t.Name, len(rows))
	}
	b.WriteString(title + "\n")
	line := func(cells []string) {
		for i, s := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(s))
			if numeric[i] {
				b.WriteString(pad + s)
			} else if i == len(cells)-1 {
				b.WriteString(s)
			} else {
				b.WriteString(s + pad)
			}
		}
		b.WriteString("\n")
	}
	line(header)
	seps := make([]string, len(header))
	for i := range seps {
		seps[i] = strings.Repeat("-", widths[i])
	}
	line(seps)
	for _, row := range rows {
		line(row)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func oneLine(s string) string {
	if strings.ContainsAny(s, "\n\r\t") {
		s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
	}
	return s
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// JSON writes one JSON object per row, with the table's name under
// "_table". Times are RFC 3339 strings, UPIDs "asid:pid:start".
func JSON(w io.Writer, t *Table) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	names := t.Relation.Names()
	for _, rec := range t.Records {
		if err := jsonRows(enc, t.Name, names, rec); err != nil {
			return err
		}
	}
	return nil
}

// jsonRows writes the rows of rec, one object each.
func jsonRows(enc *json.Encoder, table string, names []string, rec arrow.Record) error {
	for r := 0; r < int(rec.NumRows()); r++ {
		row := make(orderedRow, 0, len(names)+1)
		row = append(row, kv{"_table", table})
		for c, n := range names {
			row = append(row, kv{n, jsonValue(Value(rec.Column(c), r))})
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

type kv struct {
	k string
	v any
}

// orderedRow marshals as an object with keys in column order.
type orderedRow []kv

func (o orderedRow) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, x := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(x.k)
		v, err := json.Marshal(x.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case types.UInt128Value:
		return x.String()
	case float64:
		// JSON has no NaN or infinities: they are written as strings, as
		// protobuf's JSON mapping (and so Pixie's) writes them.
		switch {
		case math.IsNaN(x):
			return "NaN"
		case math.IsInf(x, 1):
			return "Infinity"
		case math.IsInf(x, -1):
			return "-Infinity"
		}
	}
	return v
}

// CSV writes a header and the rows. When several tables go to one stream,
// each starts with a "# table: NAME" line.
func CSV(w io.Writer, t *Table, titled bool) error {
	if titled {
		if _, err := fmt.Fprintf(w, "# table: %s\n", t.Name); err != nil {
			return err
		}
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Relation.Names()); err != nil {
		return err
	}
	cells := make([]string, len(t.Relation))
	for _, r := range t.Records {
		if err := csvRows(cw, cells, r); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvRows writes the rows of r, cells being room for one row.
func csvRows(cw *csv.Writer, cells []string, r arrow.Record) error {
	for i := 0; i < int(r.NumRows()); i++ {
		for c := range cells {
			switch v := Value(r.Column(c), i).(type) {
			case time.Time:
				cells[c] = v.Format(time.RFC3339Nano)
			case float64:
				cells[c] = strconv.FormatFloat(v, 'g', -1, 64)
			default:
				cells[c] = fmt.Sprint(v)
			}
		}
		if err := cw.Write(cells); err != nil {
			return err
		}
	}
	return nil
}

// Arrow writes t as one Arrow IPC stream whose schema metadata names the
// table ("pxq.table"); several tables are several streams in a row.
func Arrow(w io.Writer, t *Table) error {
	s := t.Relation.ArrowSchema()
	md := arrow.NewMetadata([]string{"pxq.table"}, []string{t.Name})
	s = arrow.NewSchema(s.Fields(), &md)
	iw := ipc.NewWriter(w, ipc.WithSchema(s))
	for _, r := range t.Records {
		rec := recordWithSchema(r, s)
		if err := iw.Write(rec); err != nil {
			return err
		}
	}
	return iw.Close()
}
