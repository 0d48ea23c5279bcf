package query

import (
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Defaults of Limits' zero fields.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultQueryMemory    = 512 << 20
	DefaultMaxResultRows  = 1_000_000
	DefaultMaxResultBytes = 256 << 20
)

// Limits bound what one query may use. A zero field takes its default, a
// negative one means no bound.
type Limits struct {
	// Timeout bounds a query whose caller set no deadline
	// (DefaultTimeout).
	Timeout time.Duration
	// QueryMemory bounds the bytes one query's blocking operators hold
	// (aggregates, join build sides; DefaultQueryMemory). Past it the
	// query fails with exec.ErrMemoryLimit.
	QueryMemory int64
	// MaxRowsPerTable caps each output table; the rest is dropped and
	// the table flagged truncated (exec.DefaultMaxRowsPerTable).
	MaxRowsPerTable int64
	// MaxResultRows and MaxResultBytes cap the rows and the Arrow bytes
	// of all output tables together (DefaultMaxResultRows,
	// DefaultMaxResultBytes). The output is cut there: the table being
	// sent and those after it are flagged truncated, and the Result says
	// so (Truncated and a warning).
	MaxResultRows, MaxResultBytes int64
	// ScriptMemory bounds the bytes of the values the script builds
	// while it is compiled (lang.Options.MaxMemory), MaxOutputs its
	// outputs (px.display calls), MaxSteps and MaxNodes its evaluation
	// steps and plan operations. Zero or below: lang's defaults
	// (lang.DefaultMaxMemory, …); these have no "no bound".
	ScriptMemory int64
	MaxOutputs   int
	MaxSteps     uint64
	MaxNodes     int
}

// withDefaults returns l with its zero fields set to their defaults and
// its negative ones (no bound) to 0, as exec and lang take them.
func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0:
			*v = -1
		}
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	def(&l.QueryMemory, DefaultQueryMemory)
	def(&l.MaxRowsPerTable, exec.DefaultMaxRowsPerTable)
	def(&l.MaxResultRows, DefaultMaxResultRows)
	def(&l.MaxResultBytes, DefaultMaxResultBytes)
	return l
}

// reservation is the memory a query of these limits may hold, which
// the Gate reserves for it while it runs: that of its execution or of
// its compilation, which comes first and whose values are garbage by
// the time it executes.
func (l Limits) reservation() int64 {
	script := l.ScriptMemory
	if script <= 0 {
		script = lang.DefaultMaxMemory
	}
	return max(l.QueryMemory, script, 0)
}

// compilerOptions sets lang's limits.
func (l Limits) compilerOptions(o *lang.Options) {
	o.MaxMemory, o.MaxOutputs = max(l.ScriptMemory, 0), max(l.MaxOutputs, 0)
	o.MaxSteps, o.MaxNodes = l.MaxSteps, max(l.MaxNodes, 0)
}

// errResultFull stops an execution whose output reached a result limit.
var errResultFull = errors.New("the result limit is reached")

// limitOutput counts what a query sends and cuts it at the result
// limits. When it cuts, it stops the execution (errResultFull) and
// finish ends the open table and announces the tables that were not
// sent, all flagged truncated, so that every output sees every table.
type limitOutput struct {
	exec.Output
	maxRows, maxBytes int64
	sinks             []*plan.Sink
	rows, bytes       int64
	open              string          // the table being sent
	seen              map[string]bool // tables announced
	cut               string          // the limit that cut the output
}

func newLimitOutput(out exec.Output, lim Limits, p *plan.Plan) *limitOutput {
	return &limitOutput{Output: out, maxRows: lim.MaxResultRows, maxBytes: lim.MaxResultBytes, sinks: withoutExports(p.Sinks), seen: map[string]bool{}}
}

func (o *limitOutput) Table(name string, rel types.Relation) error {
	o.open = name
	o.seen[name] = true
	return o.Output.Table(name, rel)
}

func (o *limitOutput) Batch(name string, rec arrow.Record) error {
	n, size := rec.NumRows(), RecordBytes(rec)
	keep := n
	if o.maxRows > 0 && o.rows+keep > o.maxRows {
		keep = o.maxRows - o.rows
		o.cut = fmt.Sprintf("%d rows (max-result-rows)", o.maxRows)
	}
	if keep < n {
		rec = rec.NewSlice(0, keep)
		size = RecordBytes(rec)
	}
	if o.maxBytes > 0 && o.bytes+size > o.maxBytes {
		// The most rows that fit: rows differ in width.
		room := o.maxBytes - o.bytes
		lo, hi := int64(0), keep
		for lo < hi {
			mid := (lo + hi + 1) / 2
			if RecordBytes(rec.NewSlice(0, mid)) <= room {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		keep = lo
		rec = rec.NewSlice(0, keep)
		size = RecordBytes(rec)
		o.cut = fmt.Sprintf("%d bytes (max-result-bytes)", o.maxBytes)
	}
	if keep > 0 {
		o.rows += keep
		o.bytes += size
		if err := o.Output.Batch(name, rec); err != nil {
			return err
		}
	}
	if o.cut != "" {
		return errResultFull
	}
	return nil
}

func (o *limitOutput) Done(name string, truncated bool) error {
	o.open = ""
	return o.Output.Done(name, truncated)
}

// finish turns the stop of a cut output into a flagged result.
func (o *limitOutput) finish(err error, res *Result) error {
	res.Rows, res.Bytes = o.rows, o.bytes
	if o.cut == "" || !errors.Is(err, errResultFull) {
		return err
	}
	res.Truncated = true
	res.Warn(fmt.Sprintf("the results were cut at %s, the most one query may return: filter or aggregate more", o.cut))
	if o.open != "" {
		if err := o.Done(o.open, true); err != nil {
			return err
		}
	}
	for _, s := range o.sinks {
		if o.seen[s.Name] {
			continue
		}
		if err := o.Table(s.Name, s.Relation()); err != nil {
			return err
		}
		if err := o.Done(s.Name, true); err != nil {
			return err
		}
	}
	return nil
}

// RecordBytes is the size of rec's values: of its rows only, where a
// slice shares its buffers with a bigger record (validity bitmaps left
// out: pxq has no nulls).
func RecordBytes(rec arrow.Record) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += arrayBytes(c)
	}
	return n
}

func arrayBytes(a arrow.Array) int64 {
	rows := int64(a.Len())
	switch x := a.(type) {
	case *array.String:
		offs := x.ValueOffsets()
		return int64(offs[len(offs)-1]-offs[0]) + 4*(rows+1)
	case *array.Binary:
		offs := x.ValueOffsets()
		return int64(offs[len(offs)-1]-offs[0]) + 4*(rows+1)
	}
	if fw, ok := a.DataType().(arrow.FixedWidthDataType); ok {
		return (int64(fw.BitWidth())*rows + 7) / 8
	}
	// Any other layout: its buffers' share of its rows.
	var n, total int64
	for _, b := range a.Data().Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	if total = int64(a.Data().Len() + a.Data().Offset()); total > 0 {
		n = n * rows / total
	}
	return n
}
