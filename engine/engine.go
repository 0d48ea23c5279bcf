// Package engine is pxq's embedded mode: one process that holds the table
// store and runs scripts on it, with no network. It is the local
// query.Backend: `pxq run`, `pxq serve` and the agents run queries on an
// Engine through package query.
package engine

import (
	"context"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/funcs"
	_ "github.com/pxq-dev/pxq/funcs/mdfuncs" // metadata functions
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/sources/pxtrace"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// DefaultMaxBytes bounds a node's tables together unless configured.
const DefaultMaxBytes = 1 << 30

// Version is pxq's version, set at build time with -ldflags.
var Version = "dev"

// Config configures an engine. Zero values take sensible defaults.
type Config struct {
	// Store holds the tables; a new store bounded by MaxBytes is made
	// when nil.
	Store *table.Store
	// MaxBytes bounds the bytes of all tables of a new store together
	// (DefaultMaxBytes when 0, no bound below 0). The bound applies when
	// retention runs (Store.RunRetention), as it does under live sources.
	MaxBytes int64
	// MaxAge bounds the age of the rows of the tables New creates
	// (table.DefaultMaxAge when 0).
	MaxAge time.Duration
	// Meta answers metadata functions; metadata.None when nil.
	Meta metadata.Provider
	// Hostname names this node (os.Hostname when empty).
	Hostname string
	// ASID is this node's agent short id (UPIDs carry it).
	ASID uint32
	// Limits bound the queries of Run and Collect, and the memory of
	// the fragments an agent runs (Limits.QueryMemory).
	Limits query.Limits
}

// Engine compiles and runs scripts against its store.
type Engine struct {
	cfg    Config
	store  *table.Store
	runner query.Runner
	// tracepoints runs the dynamic tracepoints of scripts (tracepoints.go).
	tracepoints *pxtrace.Manager
}

// New returns an engine whose store has every table of pxq's sources
// (empty until a source or a file fills them).
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		switch {
		case cfg.MaxBytes == 0:
			cfg.Store = table.NewStore(DefaultMaxBytes)
		case cfg.MaxBytes < 0:
			cfg.Store = table.NewStore(0)
		default:
			cfg.Store = table.NewStore(cfg.MaxBytes)
		}
	}
	if cfg.Meta == nil {
		cfg.Meta = metadata.None{}
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	for _, name := range tables.Names() {
		t := tables.All[name]
		if _, err := cfg.Store.Create(name, t.Relation, table.Options{Desc: t.Desc, MaxAge: cfg.MaxAge}); err != nil {
			return nil, err
		}
	}
	e := &Engine{cfg: cfg, store: cfg.Store, tracepoints: pxtrace.NewManager(pxtrace.Config{Store: cfg.Store, ASID: cfg.ASID})}
	e.runner = query.Runner{Backend: e, Limits: cfg.Limits}
	return e, nil
}

// Store returns the engine's table store.
func (e *Engine) Store() *table.Store { return e.store }

// ASID returns this node's agent short id.
func (e *Engine) ASID() uint32 { return e.cfg.ASID }

// Metadata returns the engine's metadata provider.
func (e *Engine) Metadata() metadata.Provider { return e.cfg.Meta }

// Catalog returns the tables scripts can scan.
func (e *Engine) Catalog() lang.Catalog { return StoreCatalog{e.store} }

// StoreCatalog serves a table store's tables to the compiler.
type StoreCatalog struct{ Store *table.Store }

func (c StoreCatalog) Relation(name string) (types.Relation, bool) {
	t := c.Store.Table(name)
	if t == nil {
		return nil, false
	}
	return t.Relation(), true
}

func (c StoreCatalog) Tables() []string {
	var out []string
	for _, t := range c.Store.Tables() {
		out = append(out, t.Name())
	}
	sort.Strings(out)
	return out
}

var _ query.Backend = (*Engine)(nil)

// Query is a request to run a script.
type Query = query.Request

// Compile parses and compiles a query into an optimized plan, with the
// compiler's default limits.
func Compile(q Query, cat lang.Catalog) (*plan.Plan, error) {
	return query.Compile(q, cat, query.Limits{})
}

// CompileLogical compiles a query into its logical (unoptimized) plan.
func CompileLogical(q Query, cat lang.Catalog) (*plan.Plan, error) {
	return query.CompileLogical(q, cat, query.Limits{})
}

// Run runs a query on the engine's store, within the engine's limits,
// and streams its output tables to out.
func (e *Engine) Run(ctx context.Context, q Query, out exec.Output) (query.Result, error) {
	return e.runner.Run(ctx, q, out)
}

// Collect runs a query and returns its tables.
func (e *Engine) Collect(ctx context.Context, q Query) ([]*format.Table, error) {
	tables, _, err := e.runner.Collect(ctx, q)
	return tables, err
}

// Tables returns the engine's tables (query.Backend).
func (e *Engine) Tables(context.Context) (lang.Catalog, []string, error) {
	return e.Catalog(), nil, nil
}

// Distributed is false: the engine runs whole plans.
func (e *Engine) Distributed() bool { return false }

// Execute runs a compiled query on the engine's store (query.Backend).
func (e *Engine) Execute(ctx context.Context, c *query.Compiled, out exec.Output, res *query.Result) error {
	opts := e.ExecOptions(c.Plan.Now)
	opts.MaxRowsPerTable = c.MaxRows
	if c.MemoryLimit != 0 {
		opts.MemoryLimit = c.MemoryLimit
	}
	res.Agents = 1
	return exec.Execute(ctx, c.Plan, opts, out)
}

// ExecOptions returns the executor options of this engine for a query
// whose now is now.
func (e *Engine) ExecOptions(now int64) exec.Options {
	mem := e.cfg.Limits.QueryMemory
	if mem == 0 {
		mem = query.DefaultQueryMemory
	}
	return exec.Options{
		Store:           e.store,
		Funcs:           &funcs.Context{Now: now, Meta: e.cfg.Meta, Hostname: e.cfg.Hostname, NumCPU: runtime.NumCPU(), ASID: e.cfg.ASID},
		MemoryLimit:     mem,
		MaxRowsPerTable: e.cfg.Limits.MaxRowsPerTable,
		Version:         Version,
		Tracepoints:     tracepointStatus{e.tracepoints},
	}
}
