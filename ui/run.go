package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/types"
)

// The answer to POST /api/run is a concatenation of Arrow IPC streams
// (Content-Type application/vnd.apache.arrow.stream), so that any Arrow
// reader that reads several streams in a row can take it apart. Each
// stream's schema metadata has "pxq.frame", saying what it is:
//
//   - "table": an output table. "pxq.table" names it; its fields carry
//     the semantic types ("pxq.semantic"); its record batches are the
//     rows, written as the engine hands them over.
//   - "done": the end of a table, with no fields (and one empty batch):
//     "pxq.table", "pxq.rows" (rows sent) and "pxq.truncated" ("true"
//     when the row cap dropped rows).
//   - "warning": "pxq.message" (for example an agent that did not
//     answer, so the results lack its rows, or a result limit that cut
//     them), after the tables.
//   - "error": "pxq.error" holds the error as JSON, as errorBody: the
//     run failed after tables had been sent. Last frame.
//   - "end": the run finished; "pxq.elapsed_ms" is how long it took
//     on the server. Last frame.
//
// A run that fails before its first table (an unknown script, a compile
// error, a bad argument) is answered with an HTTP error status and the
// JSON {"error": errorBody} instead, so that curl users see it plainly.

// Frame kinds, the values of "pxq.frame".
const (
	FrameTable   = "table"
	FrameDone    = "done"
	FrameWarning = "warning"
	FrameError   = "error"
	FrameEnd     = "end"
)

// runRequest is the body of POST /api/run.
type runRequest struct {
	// Script is a library script's name. With PXL set it only names the
	// edited script.
	Script string `json:"script"`
	// PXL and Vis are an edited script's text (the editor); Vis may be
	// empty.
	PXL  *string           `json:"pxl"`
	Vis  string            `json:"vis"`
	Args map[string]string `json:"args"`
	// Library runs the library's copy of a script that a user folder's
	// script shadows.
	Library bool `json:"library"`
}

func (h *handler) run(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req runRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, errorBody{Message: "bad run request: " + err.Error()})
		return
	}
	s, eb := h.script(req)
	if eb != nil {
		status := http.StatusBadRequest
		if eb.Kind == "not_found" {
			status = http.StatusNotFound
		}
		writeError(w, status, *eb)
		return
	}
	if eb := checkArgs(s.Vis, req.Args); eb != nil {
		writeError(w, http.StatusBadRequest, *eb)
		return
	}
	q := query.Request{Script: s, Args: req.Args}
	if h.cfg.Now != nil {
		q.Now = h.cfg.Now()
	}
	out := &streamOut{w: w, rc: http.NewResponseController(w)}
	res, err := h.cfg.Runner.Run(r.Context(), q, out)
	if err != nil {
		status, eb := describe(err)
		eb = blameVariable(s.Vis, eb)
		eb.Message = forThePage(eb.Message)
		if !out.started {
			writeError(w, status, eb)
			return
		}
		out.closeTable()
		js, _ := json.Marshal(eb)
		out.frame(FrameError, "pxq.error", string(js))
		return
	}
	out.start()
	out.closeTable()
	for _, msg := range res.Warnings {
		out.frame(FrameWarning, "pxq.message", msg)
	}
	out.frame(FrameEnd, "pxq.elapsed_ms", strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 1, 64))
}

// script returns the script a run request names or holds.
func (h *handler) script(req runRequest) (*scripts.Script, *errorBody) {
	if req.PXL == nil {
		if req.Script == "" {
			return nil, &errorBody{Message: errNoScript.Error(), Kind: "args"}
		}
		s, err := h.lookup(req.Script, req.Library)
		if err != nil {
			return nil, &errorBody{Message: forThePage(err.Error()), Kind: "not_found"}
		}
		return s, nil
	}
	name := req.Script
	if name == "" {
		name = "editor"
	}
	base := name[strings.LastIndex(name, "/")+1:]
	s := &scripts.Script{Name: name, Path: base + ".pxl", PXL: []byte(*req.PXL), Source: "editor"}
	if strings.TrimSpace(req.Vis) != "" {
		v, err := lang.ParseVis([]byte(req.Vis))
		if err != nil {
			eb := &errorBody{Message: err.Error(), Kind: "vis", File: "vis.json"}
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(err, &se):
				eb.Line, eb.Col = lineCol(req.Vis, se.Offset)
			case errors.As(err, &te):
				eb.Line, eb.Col = lineCol(req.Vis, te.Offset)
			}
			return nil, eb
		}
		s.Vis, s.VisRaw = v, []byte(req.Vis)
	}
	return s, nil
}

// lineCol turns a byte offset of text into a 1-based line and column.
func lineCol(text string, off int64) (int, int) {
	if off > int64(len(text)) {
		off = int64(len(text))
	}
	before := text[:off]
	line := strings.Count(before, "\n") + 1
	col := int(off) - strings.LastIndex(before, "\n")
	return line, col
}

// describe maps a run's error to its HTTP status and body.
func describe(err error) (int, errorBody) {
	var le *lang.Error
	switch {
	case errors.As(err, &le):
		return http.StatusBadRequest, errorBody{Message: le.Msg, Kind: "compile", File: le.File, Line: le.Line, Col: le.Col}
	case errors.Is(err, query.ErrBusy), errors.Is(err, query.ErrShutdown):
		return http.StatusServiceUnavailable, errorBody{Message: err.Error(), Kind: "busy"}
	case errors.Is(err, query.ErrNoAgents), errors.Is(err, query.ErrAgentMissing):
		return http.StatusServiceUnavailable, errorBody{Message: err.Error(), Kind: "agents"}
	case errors.Is(err, context.Canceled):
		return 499, errorBody{Message: "the run was cancelled", Kind: "canceled"} // the client went away; nobody reads this
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusInternalServerError, errorBody{Message: "the run took too long: " + err.Error()}
	}
	return http.StatusInternalServerError, errorBody{Message: err.Error()}
}

// streamOut writes a run's tables to the response as they come.
type streamOut struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	cur     *ipc.Writer
	schema  *arrow.Schema
	name    string
	rows    int64
	batches int
}

func (o *streamOut) start() {
	if o.started {
		return
	}
	o.started = true
	h := o.w.Header()
	h.Set("Content-Type", "application/vnd.apache.arrow.stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	o.w.WriteHeader(http.StatusOK)
}

func (o *streamOut) flush() {
	o.rc.Flush() // a writer that cannot flush sends at the end: fine
}

func (o *streamOut) Table(name string, rel types.Relation) error {
	o.start()
	o.closeTable()
	s := rel.ArrowSchema()
	md := arrow.NewMetadata([]string{"pxq.frame", "pxq.table"}, []string{FrameTable, name})
	o.schema = arrow.NewSchema(s.Fields(), &md)
	o.cur = ipc.NewWriter(o.w, ipc.WithSchema(o.schema))
	o.name, o.rows, o.batches = name, 0, 0
	return nil
}

func (o *streamOut) Batch(name string, rec arrow.Record) error {
	if o.cur == nil || name != o.name {
		return fmt.Errorf("ui: batch for table %q, which is not open", name)
	}
	r := array.NewRecord(o.schema, rec.Columns(), rec.NumRows())
	defer r.Release()
	if err := o.cur.Write(r); err != nil {
		return err
	}
	o.rows += rec.NumRows()
	o.batches++
	o.flush()
	return nil
}

func (o *streamOut) Done(name string, truncated bool) error {
	if o.cur == nil || name != o.name {
		return fmt.Errorf("ui: end of table %q, which is not open", name)
	}
	if err := o.closeTable(); err != nil {
		return err
	}
	return o.frame(FrameDone, "pxq.table", name, "pxq.rows", strconv.FormatInt(o.rows, 10), "pxq.truncated", strconv.FormatBool(truncated))
}

// closeTable ends the open table's IPC stream, if any.
func (o *streamOut) closeTable() error {
	if o.cur == nil {
		return nil
	}
	if o.batches == 0 {
		if err := writeEmpty(o.cur, o.schema); err != nil {
			return err
		}
	}
	err := o.cur.Close()
	o.cur = nil
	o.flush()
	return err
}

// frame writes a control frame: an IPC stream with no fields whose
// schema metadata says it all (kv are key, value pairs).
func (o *streamOut) frame(kind string, kv ...string) error {
	keys := []string{"pxq.frame"}
	vals := []string{kind}
	for i := 0; i+1 < len(kv); i += 2 {
		keys = append(keys, kv[i])
		vals = append(vals, kv[i+1])
	}
	md := arrow.NewMetadata(keys, vals)
	s := arrow.NewSchema(nil, &md)
	iw := ipc.NewWriter(o.w, ipc.WithSchema(s))
	err := writeEmpty(iw, s)
	if cerr := iw.Close(); err == nil {
		err = cerr
	}
	o.flush()
	return err
}

// writeEmpty writes a record batch with no rows. Every stream of a run
// answer has at least one batch: Arrow's JavaScript reader, given a
// stream with none, reads on into the next stream of the concatenation.
func writeEmpty(w *ipc.Writer, s *arrow.Schema) error {
	cols := make([]arrow.Array, len(s.Fields()))
	for i, f := range s.Fields() {
		cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
	}
	r := array.NewRecord(s, cols, 0)
	defer r.Release()
	for _, c := range cols {
		c.Release()
	}
	return w.Write(r)
}
