// Package query is the one path from a script to its tables, which every
// front end takes (pxq run and live, the public gRPC services, the web
// UI) over every backend (the embedded engine, a broker over agents):
//
//	admit (Gate) → list the backend's tables → compile (lang) → optimize
//	(planner) → split when the backend is distributed → execute (the
//	backend) → stream the tables to an exec.Output, within the Limits
//
// A Runner does it and returns one Result. A script's mistake is a
// *lang.Error (file:line:col and message); front ends map it, and the
// errors of this package (ErrBusy, ErrShutdown, …), to their wire forms.
package query

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/pxtrace"
)

// Request is one script to run.
type Request struct {
	Script *scripts.Script
	// Args are the values of the vis spec's variables (defaults for
	// the rest).
	Args map[string]string
	// Funcs, when set, are the functions to call instead of the vis
	// spec's (as Pixie's API exec_funcs asks).
	Funcs []lang.FuncCall
	// Now is the query's now; the Runner's clock when zero.
	Now time.Time
	// ID names the query in logs and in the agents' requests; a new
	// one when empty.
	ID string
	// MaxRows caps each output table (0: Limits.MaxRowsPerTable; below
	// 0: no cap).
	MaxRows int64
	// AllOrNothing fails the query when an agent does not answer,
	// instead of returning the others' results with a warning.
	AllOrNothing bool
	// OTelEndpoint is the collector of px.export calls that name none
	// (Pixie's otel_endpoint_config); nil: the Exporter's default.
	OTelEndpoint *plan.OTelEndpoint
	// PluginStart and PluginEnd are px.plugin.start_time and end_time
	// (Pixie's plugin_config): the window a scheduled export covers.
	PluginStart, PluginEnd time.Time
	// Mutation is Pixie's mutation flag: the script's tracepoints
	// (pxtrace) are deployed, and when they are not all running within
	// MutationWait the query returns with Result.Pending instead of
	// waiting (the client asks again). Without it a query waits for them.
	Mutation bool
}

// Backend runs compiled queries: the embedded engine on its store, or a
// broker over its agents.
type Backend interface {
	// Tables returns the tables scripts compile against (a broker's are
	// the union of its agents'), with warnings naming agents that did
	// not answer.
	Tables(ctx context.Context) (lang.Catalog, []string, error)
	// Distributed reports whether the backend runs plans split into
	// node and merge fragments (Compiled.Split).
	Distributed() bool
	// Execute runs c and streams its tables to out, adding what it
	// learns (warnings, rows moved, agents) to res.
	Execute(ctx context.Context, c *Compiled, out exec.Output, res *Result) error
}

// Compiled is a request compiled for its backend.
type Compiled struct {
	ID string
	// Plan is the optimized plan.
	Plan *plan.Plan
	// Split is Plan cut into node and merge fragments when the backend
	// is distributed; nil otherwise.
	Split *planner.Distributed
	// MaxRows caps each output table (exec.Options.MaxRowsPerTable).
	MaxRows int64
	// MemoryLimit bounds the bytes the query's blocking operators hold
	// (exec.Options.MemoryLimit).
	MemoryLimit  int64
	AllOrNothing bool
	// Tracepoints are the script's pxtrace calls, deployed (Tracer)
	// before the plan runs.
	Tracepoints []lang.Tracepoint
}

// Result tells how a query ran. Its tables went to the Output.
type Result struct {
	ID string
	// Compile is the time to list tables, compile, optimize and split;
	// Exec the time to execute.
	Compile, Exec time.Duration
	// Rows and Bytes count what the output received (Arrow bytes).
	Rows, Bytes int64
	// Truncated reports that MaxResultRows or MaxResultBytes cut the
	// output (a warning says which; the cut tables are flagged).
	Truncated bool
	// Warnings say what is missing from the results: agents that were
	// down, too slow or failed; rows a result limit dropped.
	Warnings []string
	// BytesMoved and RowsMoved count what agents sent the broker.
	BytesMoved, RowsMoved int64
	// Agents is the number of agents whose results are complete (1 on
	// the embedded engine).
	Agents int
	// Exported counts the rows handed to the Exporter (px.export); they
	// are sent after the query, in the background.
	Exported int64
	// Tracepoints are the states of the script's tracepoints, one per
	// pxtrace call; Pending says that some were still starting, so the
	// plan did not run (Request.Mutation).
	Tracepoints []pxtrace.Status
	Pending     bool
}

// Warn adds a warning, once.
func (r *Result) Warn(w string) {
	for _, have := range r.Warnings {
		if have == w {
			return
		}
	}
	r.Warnings = append(r.Warnings, w)
}

// Runner runs requests on a backend within limits. Its fields must not
// change once it runs queries; it is safe for concurrent use.
type Runner struct {
	Backend Backend
	Limits  Limits
	// Gate admits queries; every query is admitted when nil.
	Gate *Gate
	// Now gives queries their now when the request has none (e.g. the
	// end of a capture being served); time.Now when nil.
	Now func() time.Time
	// Log receives one line per query; none when nil.
	Log *slog.Logger
	// Exporter sends the rows of export sinks; when nil they are dropped
	// with a warning.
	Exporter Exporter
}

// Run runs req and streams its tables to out. A script's mistake is a
// *lang.Error, returned before anything was written to out.
func (r *Runner) Run(ctx context.Context, req Request, out exec.Output) (Result, error) {
	res := Result{ID: req.ID}
	if res.ID == "" {
		res.ID = NewID()
	}
	lim := r.Limits.withDefaults()
	ctx, leave, err := r.Gate.Enter(ctx, lim.reservation())
	if err != nil {
		return res, r.done(ctx, req, &res, err)
	}
	defer leave()
	if _, ok := ctx.Deadline(); !ok && lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, lim.Timeout, timeoutError(lim.Timeout))
		defer cancel()
	}
	start := time.Now()
	c, err := r.compile(ctx, req, lim, &res)
	res.Compile = time.Since(start)
	if err != nil {
		return res, r.done(ctx, req, &res, err)
	}
	if len(c.Tracepoints) > 0 {
		if err := r.deploy(ctx, req, c, &res); err != nil || res.Pending {
			return res, r.done(ctx, req, &res, err)
		}
	}
	writers, err := r.openExports(c.Plan, req, &res)
	if err != nil {
		return res, r.done(ctx, req, &res, err)
	}
	lo := newLimitOutput(out, lim, c.Plan)
	eo := &exportOutput{Output: lo, writers: writers, done: map[string]bool{}}
	err = r.Backend.Execute(ctx, c, eo, &res)
	eo.close(err, &res)
	err = lo.finish(err, &res)
	res.Exec = time.Since(start) - res.Compile
	return res, r.done(ctx, req, &res, err)
}

// compile lists the backend's tables and compiles req for it.
func (r *Runner) compile(ctx context.Context, req Request, lim Limits, res *Result) (*Compiled, error) {
	cat, warns, err := r.Backend.Tables(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range warns {
		res.Warn(w)
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
		if r.Now != nil {
			req.Now = r.Now()
		}
	}
	var muts lang.Mutations
	p, err := compile(ctx, req, cat, lim, true, &muts)
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled: the evaluation's error says only that.
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	c := &Compiled{ID: res.ID, Plan: p, MaxRows: req.MaxRows, MemoryLimit: lim.QueryMemory, AllOrNothing: req.AllOrNothing, Tracepoints: muts.Tracepoints}
	if c.MaxRows == 0 {
		c.MaxRows = lim.MaxRowsPerTable
	}
	if r.Backend.Distributed() {
		if c.Split, err = planner.Split(p); err != nil {
			return nil, fmt.Errorf("splitting %s: %w", req.Script.Name, err)
		}
	}
	return c, nil
}

// done logs a finished query and gives its error the cause the query's
// context ended with (a server shutting down, a deadline).
func (r *Runner) done(ctx context.Context, req Request, res *Result, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// Say why the context ended rather than that it did.
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
	}
	if r.Log != nil {
		name := ""
		if req.Script != nil {
			name = req.Script.Name
		}
		attrs := []any{"id", res.ID, "script", name, "compile", res.Compile, "exec", res.Exec,
			"rows", res.Rows, "bytes", res.Bytes, "moved_bytes", res.BytesMoved, "warnings", len(res.Warnings), "err", err}
		if res.Exported > 0 {
			attrs = append(attrs, "exported", res.Exported)
		}
		r.Log.Info("query", attrs...)
	}
	return err
}

// timeoutError ends a query that ran for its Limits.Timeout.
type timeoutError time.Duration

func (e timeoutError) Error() string {
	return fmt.Sprintf("the query ran for %v, its most (query-timeout)", time.Duration(e))
}

func (timeoutError) Unwrap() error { return context.DeadlineExceeded }

// NewID returns a random query id (a version 4 UUID).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
