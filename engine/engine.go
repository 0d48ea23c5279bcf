// Package engine is pxq's embedded mode: one process that holds the table
// store, compiles scripts, plans and runs them, with no network. The
// agent and the broker of a cluster are built from the same parts.
package engine

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/funcs"
	_ "github.com/pxq-dev/pxq/funcs/mdfuncs" // metadata functions
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/scripts"
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
	// Meta answers metadata functions; metadata.None when nil.
	Meta metadata.Provider
	// Hostname names this node (os.Hostname when empty).
	Hostname string
	// ASID is this node's agent short id (UPIDs carry it).
	ASID uint32
	// MaxRowsPerTable caps output tables (exec's default when 0).
	MaxRowsPerTable int64
	// MemoryLimit bounds one query's blocking operators (exec's default
	// when 0).
	MemoryLimit int64
}

// Engine compiles and runs scripts against its store.
type Engine struct {
	cfg   Config
	store *table.Store
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
	for _, name := range schema.Names() {
		t := schema.All[name]
		if _, err := cfg.Store.Create(name, t.Relation, table.Options{Desc: t.Desc}); err != nil {
			return nil, err
		}
	}
	return &Engine{cfg: cfg, store: cfg.Store}, nil
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

// Runner runs queries: the embedded engine, or a broker over its agents.
// Front ends (the CLI, the gRPC API, the web UI) are written against it.
type Runner interface {
	// Run compiles q and streams its output tables to out.
	Run(ctx context.Context, q Query, out exec.Output) error
	// Catalog lists the tables queries can scan.
	Catalog() lang.Catalog
}

var _ Runner = (*Engine)(nil)

// Query is a request to run a script.
type Query struct {
	Script *scripts.Script
	// Args are the values of the vis spec's variables (defaults for
	// the rest).
	Args map[string]string
	// Funcs, when set, are the functions to call instead of the vis
	// spec's (as Pixie's API exec_funcs asks).
	Funcs []lang.FuncCall
	// Now is the query's now; time.Now() when zero.
	Now time.Time
}

// Compile parses and compiles a query into an optimized plan.
func Compile(q Query, cat lang.Catalog) (*plan.Plan, error) {
	p, err := CompileLogical(q, cat)
	if err != nil {
		return nil, err
	}
	opt, err := planner.Optimize(p)
	if err != nil {
		return nil, fmt.Errorf("optimizing %s: %w", q.Script.Name, err)
	}
	return opt, nil
}

// CompileLogical compiles a query into its logical (unoptimized) plan.
func CompileLogical(q Query, cat lang.Catalog) (*plan.Plan, error) {
	s, err := lang.Parse(q.Script.Path, q.Script.PXL)
	if err != nil {
		return nil, err
	}
	opts := lang.Options{Now: q.Now, Catalog: cat}
	switch {
	case len(q.Funcs) > 0:
		opts.Calls = q.Funcs
	case q.Script.Vis != nil && (len(q.Script.Vis.GlobalFuncs) > 0 || len(q.Script.Vis.Widgets) > 0):
		calls, err := q.Script.Vis.Calls(q.Args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.Script.Name, err)
		}
		opts.Calls = calls
	case len(q.Args) > 0:
		for k := range q.Args {
			return nil, fmt.Errorf("%s: argument %q given, but the script has no vis spec with variables", q.Script.Name, k)
		}
	}
	return s.Compile(opts)
}

// Run compiles a query and streams its output tables to out.
func (e *Engine) Run(ctx context.Context, q Query, out exec.Output) error {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	p, err := Compile(q, e.Catalog())
	if err != nil {
		return err
	}
	return e.Execute(ctx, p, out)
}

// Execute runs an optimized plan on the engine's store.
func (e *Engine) Execute(ctx context.Context, p *plan.Plan, out exec.Output) error {
	return exec.Execute(ctx, p, e.ExecOptions(p.Now), out)
}

// ExecOptions returns the executor options of this engine for a query
// whose now is now.
func (e *Engine) ExecOptions(now int64) exec.Options {
	return exec.Options{
		Store:           e.store,
		Funcs:           &funcs.Context{Now: now, Meta: e.cfg.Meta, Hostname: e.cfg.Hostname, NumCPU: runtime.NumCPU(), ASID: e.cfg.ASID},
		MemoryLimit:     e.cfg.MemoryLimit,
		MaxRowsPerTable: e.cfg.MaxRowsPerTable,
		Version:         Version,
	}
}

// Collect runs a query and returns its tables.
func (e *Engine) Collect(ctx context.Context, q Query) ([]*format.Table, error) {
	c := &Collector{}
	if err := e.Run(ctx, q, c); err != nil {
		return nil, err
	}
	return c.Tables, nil
}

// Collector is an exec.Output that keeps every table in memory.
type Collector struct {
	Tables []*format.Table
	byName map[string]*format.Table
}

func (c *Collector) Table(name string, rel types.Relation) error {
	if c.byName == nil {
		c.byName = map[string]*format.Table{}
	}
	t := &format.Table{Name: name, Relation: rel}
	c.byName[name] = t
	c.Tables = append(c.Tables, t)
	return nil
}

func (c *Collector) Batch(name string, rec arrow.Record) error {
	t := c.byName[name]
	if t == nil {
		return fmt.Errorf("batch for unannounced table %q", name)
	}
	t.Records = append(t.Records, rec)
	return nil
}

func (c *Collector) Done(name string, truncated bool) error {
	if t := c.byName[name]; t != nil {
		t.Truncated = truncated
	}
	return nil
}
