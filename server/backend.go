package server

import (
	"context"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/types"
)

// Backend is what runs the plans of the public services: the embedded
// engine of `pxq serve` (Local) or a broker over agents.
type Backend interface {
	// Catalog returns the tables scripts compile against (a broker's is
	// the union of its agents'), with warnings naming agents that did
	// not answer.
	Catalog(ctx context.Context) (lang.Catalog, []string, error)
	// Execute runs an optimized plan and streams its tables to out.
	Execute(ctx context.Context, p *plan.Plan, out exec.Output, o ExecOptions) (ExecInfo, error)
}

// ExecOptions are a query's choices that reach the backend.
type ExecOptions struct {
	// MaxRows caps each output table (0: exec's default of 10,000;
	// below 0: no cap).
	MaxRows int64
	// AllOrNothing fails the query when an agent does not answer,
	// instead of returning the others' results with a warning.
	AllOrNothing bool
	// QueryID names the query in logs and in the agents' requests.
	QueryID string
}

// ExecInfo tells how a query ran.
type ExecInfo struct {
	// Warnings name what is missing from the results (agents that were
	// down, too slow, or failed).
	Warnings []string
	// BytesMoved and RowsMoved count what agents sent the broker.
	BytesMoved, RowsMoved int64
	// Agents is the number of agents whose results are complete.
	Agents int
}

// Local is the Backend of one process: the embedded engine and its
// store.
type Local struct{ Engine *engine.Engine }

// Catalog returns the engine's tables.
func (l Local) Catalog(context.Context) (lang.Catalog, []string, error) {
	return l.Engine.Catalog(), nil, nil
}

// Execute runs p on the engine's store.
func (l Local) Execute(ctx context.Context, p *plan.Plan, out exec.Output, o ExecOptions) (ExecInfo, error) {
	opts := l.Engine.ExecOptions(p.Now)
	opts.MaxRowsPerTable = o.MaxRows
	return ExecInfo{Agents: 1}, exec.Execute(ctx, p, opts, out)
}

// MapCatalog is a lang.Catalog over a fixed set of relations.
type MapCatalog map[string]types.Relation

// Relation returns a table's columns.
func (m MapCatalog) Relation(name string) (types.Relation, bool) {
	r, ok := m[name]
	return r, ok
}

// Tables lists the tables, sorted.
func (m MapCatalog) Tables() []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sortStrings(out)
	return out
}

// TableDesc returns the description of a table pxq's sources fill, or "".
func TableDesc(name string) string { return schema.All[name].Desc }

// Runner adapts a Backend to engine.Runner, for front ends written
// against it (the web UI): Run compiles and executes, warnings are
// logged; Catalog returns the backend's tables or, when it cannot list
// them, none.
type Runner struct {
	Backend Backend
	// Options apply to every query.
	Options ExecOptions
}

var _ engine.Runner = Runner{}

// Run compiles q against the backend's catalog and runs it.
func (r Runner) Run(ctx context.Context, q engine.Query, out exec.Output) error {
	cat, _, err := r.Backend.Catalog(ctx)
	if err != nil {
		return err
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	p, err := engine.Compile(q, cat)
	if err != nil {
		return err
	}
	_, err = r.Backend.Execute(ctx, p, out, r.Options)
	return err
}

// Catalog returns the backend's tables.
func (r Runner) Catalog() lang.Catalog {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cat, _, err := r.Backend.Catalog(ctx)
	if err != nil {
		return MapCatalog{}
	}
	return cat
}
