package query

import (
	"fmt"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Exporter sends the rows of a query's export sinks (px.export; sinks
// with plan.Sink.OTel) out of pxq. export/otel's is the one there is.
type Exporter interface {
	// Open starts one export sink of a query. It fails before the query
	// runs when the rows could not be sent anywhere (no endpoint, one it
	// cannot use).
	Open(s ExportSink) (ExportWriter, error)
}

// ExportSink is one export sink of one query.
type ExportSink struct {
	Query, Script string
	Sink          *plan.Sink
	// Endpoint is the request's default collector, for an export whose
	// script names none; nil: the exporter's own default.
	Endpoint *plan.OTelEndpoint
	// Now is the query's now; Start and End its px.plugin window when the
	// request gave one (zero otherwise).
	Now, Start, End time.Time
}

// ExportWriter takes the batches of one export sink. Batch must not wait
// on the network: an export never holds up its query.
type ExportWriter interface {
	Batch(rec arrow.Record) error
	// Close ends the export; err is the query's error (nil when every
	// batch arrived). It returns warnings: rows left out, for instance.
	Close(err error) []string
}

// openExports opens a writer for each export sink of p.
func (r *Runner) openExports(p *plan.Plan, req Request, res *Result) (map[string]ExportWriter, error) {
	var ws map[string]ExportWriter
	for _, s := range p.Sinks {
		if s.OTel == nil {
			continue
		}
		fail := func(format string, args ...any) error {
			for _, w := range ws {
				w.Close(errExportNotRun)
			}
			return &lang.Error{File: s.Pos.File, Line: int(s.Pos.Line), Col: int(s.Pos.Col), Msg: fmt.Sprintf(format, args...)}
		}
		if ws == nil {
			ws = map[string]ExportWriter{}
		}
		if r.Exporter == nil {
			// The rows are made, and dropped with a warning: the
			// script's other tables still show.
			ws[s.Name] = noExport(s.Name)
			continue
		}
		name := ""
		if req.Script != nil {
			name = req.Script.Name
		}
		w, err := r.Exporter.Open(ExportSink{Query: res.ID, Script: name, Sink: s, Endpoint: req.OTelEndpoint,
			Now: req.Now, Start: req.PluginStart, End: req.PluginEnd})
		if err != nil {
			return nil, fail("px.export: %v", err)
		}
		ws[s.Name] = w
	}
	return ws, nil
}

// noExport drops an export's rows where nothing exports.
type noExport string

func (noExport) Batch(arrow.Record) error { return nil }
func (noExport) Close(error) []string {
	return []string{"px.export: not sent: this command sends no OpenTelemetry data (pxq serve, agent and broker do, with --otel-endpoint)"}
}

var errExportNotRun = fmt.Errorf("the query did not run")

// exportOutput hands the batches of export sinks to their writers and
// the other tables to the query's output.
type exportOutput struct {
	exec.Output
	writers map[string]ExportWriter
	done    map[string]bool
	rows    int64
	warns   []string
}

func (o *exportOutput) Table(name string, rel types.Relation) error {
	if o.writers[name] != nil {
		return nil
	}
	return o.Output.Table(name, rel)
}

func (o *exportOutput) Batch(name string, rec arrow.Record) error {
	if w := o.writers[name]; w != nil {
		if _, none := w.(noExport); !none {
			o.rows += rec.NumRows()
		}
		return w.Batch(rec)
	}
	return o.Output.Batch(name, rec)
}

func (o *exportOutput) Done(name string, truncated bool) error {
	if w := o.writers[name]; w != nil {
		// Every batch of the sink is in: its export can complete.
		o.done[name] = true
		o.warns = append(o.warns, w.Close(nil)...)
		return nil
	}
	return o.Output.Done(name, truncated)
}

// close ends the exports still open with the query's error.
func (o *exportOutput) close(err error, res *Result) {
	if err == nil {
		err = errExportNotRun
	}
	for name, w := range o.writers {
		if !o.done[name] {
			o.warns = append(o.warns, w.Close(err)...)
		}
	}
	res.Exported += o.rows
	for _, w := range o.warns {
		res.Warn(w)
	}
}

// withoutExports returns p's sinks that are not export sinks.
func withoutExports(sinks []*plan.Sink) []*plan.Sink {
	out := make([]*plan.Sink, 0, len(sinks))
	for _, s := range sinks {
		if s.OTel == nil {
			out = append(out, s)
		}
	}
	return out
}
