// Package exec is pxq's vectorized query engine: it runs a plan (package
// plan) over Arrow record batches from the table store, a bridge from
// other fragments, or table functions, and hands each sink's batches to
// the caller.
//
// Operators (one per file: scan.go, map.go, filter.go, aggregate.go,
// join.go, limit.go, union.go, tablefunc.go, bridge.go, sink.go) pull
// batches from their inputs. Expressions are compiled once per operator
// into a tree of funcs kernels (expr.go). A query runs on the calling
// goroutine, sink after sink, and
//   - stops when ctx is cancelled, returning ctx's error;
//   - counts the bytes held by blocking operators (hash aggregate, join
//     build side, buffers of nodes shared by several parents) and fails
//     with an error naming the operator when they exceed MemoryLimit;
//   - turns a panic inside an operator or kernel into the query's error,
//     naming the operator, so that one bad query never kills the process.
package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// DefaultMemoryLimit bounds the bytes a query's blocking operators hold
// when Options.MemoryLimit is 0.
const DefaultMemoryLimit = 1 << 30

// DefaultMaxRowsPerTable caps each output table when
// Options.MaxRowsPerTable is 0, as Pixie does.
const DefaultMaxRowsPerTable = 10000

// Options configure one query execution. Only Store is needed for plans
// that scan tables.
type Options struct {
	// Store holds the tables that Scan nodes read.
	Store *table.Store
	// Funcs is what kernels may read (now, metadata, hostname). When nil,
	// a context for this host is made with Now = the plan's Now and no
	// metadata. A nil Meta is replaced by metadata.None.
	Funcs *funcs.Context
	// MemoryLimit bounds the bytes held by the query's blocking
	// operators; 0 means DefaultMemoryLimit, below 0 no bound.
	MemoryLimit int64
	// MaxRowsPerTable caps the rows of each output table (the excess is
	// dropped and Output.Done says truncated); 0 means
	// DefaultMaxRowsPerTable, below 0 no cap. Export sinks (plan.Sink's
	// OTel) are not capped.
	MaxRowsPerTable int64
	// Bridge connects fragments of a distributed plan; needed only for
	// plans with BridgeSource or BridgeSink nodes.
	Bridge Bridge
	// Agents answers GetAgentStatus; when nil the function reports this
	// host as the one agent.
	Agents tablefuncs.Agents
	// Tracepoints answers GetTracepointStatus; none when nil.
	Tracepoints tablefuncs.Tracepoints
	// StartTime is when this node started (ns since the epoch), the create
	// time GetAgentStatus reports for it; 0 means this process's start.
	StartTime int64
	// Version is what the Version table function reports ("dev" if
	// empty).
	Version string
	// BatchSize caps the rows of batches the operators make (joins and
	// aggregates; scans pass the store's batches on, and decode files in
	// batches of this many rows, 65536 when 0); 0 means 32768.
	BatchSize int
	// Parallelism is how many goroutines a scan of files (and the maps,
	// filters and aggregate over it) may use; 0 means GOMAXPROCS, 1
	// runs the plan on the calling goroutine only.
	Parallelism int
}

// Output receives a query's results. For every sink, in plan order, the
// executor calls Table once, Batch for each batch (never empty), then
// Done. Batches are immutable and stay valid after the call; the
// receiver must not Release them.
type Output interface {
	Table(name string, rel types.Relation) error
	Batch(name string, rec arrow.Record) error
	// Done ends a table; truncated reports that rows were dropped by
	// MaxRowsPerTable.
	Done(name string, truncated bool) error
}

// Execute runs plan p and hands every sink's rows to out. It returns the
// first error of any operator, kernel or of out, ctx's error when it is
// cancelled, or an error naming the operator that exceeded the memory
// limit or panicked.
func Execute(ctx context.Context, p *plan.Plan, opts Options, out Output) error {
	roots := make([]plan.Node, len(p.Sinks))
	for i, s := range p.Sinks {
		roots[i] = s
	}
	return ExecuteFragment(ctx, roots, p.Now, opts, out)
}

// ExecuteFragment runs the plan fragment whose roots are Sink and
// BridgeSink nodes (a distributed plan's fragment has BridgeSinks where a
// whole plan has Sinks), in order. now is the query's now (ns since the
// epoch), used when opts.Funcs is nil. out may be nil when there are no
// Sinks.
func ExecuteFragment(ctx context.Context, roots []plan.Node, now int64, opts Options, out Output) (err error) {
	q := newQuery(now, opts)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("exec: panic: %v", r)
		}
	}()
	for _, r := range roots {
		q.countParents(r)
	}
	// Build every root's operators before running any, so that a node
	// shared by several roots has all its readers.
	ops := make([]operator, len(roots))
	closeAll := func() {
		for _, op := range ops {
			if op != nil {
				op.close()
			}
		}
	}
	for i, r := range roots {
		switch n := r.(type) {
		case *plan.Sink:
			if out == nil {
				closeAll()
				return errors.New("exec: plan has sinks but no output")
			}
			ops[i], err = q.build(n.Input)
		case *plan.BridgeSink:
			ops[i], err = q.build(n.Input)
		default:
			err = fmt.Errorf("exec: a fragment root must be a Sink or BridgeSink, not %s", r.Describe())
		}
		if err != nil {
			closeAll()
			return err
		}
	}
	for i, r := range roots {
		if err := ctx.Err(); err != nil {
			closeAll()
			return err
		}
		op := ops[i]
		ops[i] = nil // the runner closes it
		switch n := r.(type) {
		case *plan.Sink:
			err = q.runSink(ctx, n, op, out)
		case *plan.BridgeSink:
			err = q.runBridgeSink(ctx, n, op)
		}
		if err != nil {
			closeAll()
			return err
		}
	}
	return nil
}

// Result is one output table, as Collect returns it.
type Result struct {
	Name      string
	Relation  types.Relation
	Records   []arrow.Record
	Truncated bool
}

// NumRows returns the total rows of r's records.
func (r *Result) NumRows() int64 {
	var n int64
	for _, rec := range r.Records {
		n += rec.NumRows()
	}
	return n
}

// Collect runs p and returns every sink's records, in sink order. The
// collected records count against the memory limit.
func Collect(ctx context.Context, p *plan.Plan, opts Options) ([]Result, error) {
	c := &collector{limit: memoryLimit(opts.MemoryLimit)}
	if err := Execute(ctx, p, opts, c); err != nil {
		return nil, err
	}
	return c.results, nil
}

type collector struct {
	results []Result
	bytes   int64
	limit   int64
}

func (c *collector) Table(name string, rel types.Relation) error {
	c.results = append(c.results, Result{Name: name, Relation: rel})
	return nil
}

func (c *collector) Batch(name string, rec arrow.Record) error {
	r := &c.results[len(c.results)-1]
	c.bytes += table.RecordBytes(rec)
	if c.limit > 0 && c.bytes > c.limit {
		return fmt.Errorf("exec: collecting sink %q: memory limit of %d bytes exceeded", name, c.limit)
	}
	r.Records = append(r.Records, rec)
	return nil
}

func (c *collector) Done(name string, truncated bool) error {
	c.results[len(c.results)-1].Truncated = truncated
	return nil
}

func memoryLimit(l int64) int64 {
	if l == 0 {
		return DefaultMemoryLimit
	}
	if l < 0 {
		return 0
	}
	return l
}

// query is the state of one execution (or of one goroutine of a
// parallel chain: parallel.go).
type query struct {
	opts    Options
	fctx    *funcs.Context
	mem     *budget
	parents map[plan.Node]int
	tees    map[plan.Node]*tee
	batch   int
	workers int // goroutines a file scan may use
	// sources are operators already made for plan nodes, which build
	// returns instead of making them (a parallel chain's inputs).
	sources map[plan.Node]operator
	// coded are the scans whose string columns come as codes
	// (dictkeys.go), with each column's Dict.
	coded map[*plan.Scan]map[string]*table.Dict
	// joinCodes are the joins on codes (dictjoin.go): for each key, the
	// Dict that codes the build side's strings, or nil.
	joinCodes map[*plan.Join][]*table.Dict
}

func newQuery(now int64, opts Options) *query {
	fctx := opts.Funcs
	if fctx == nil {
		host, _ := os.Hostname()
		fctx = &funcs.Context{Now: now, Hostname: host, NumCPU: runtime.NumCPU()}
	}
	if fctx.Meta == nil {
		c := *fctx
		c.Meta = metadata.None{}
		fctx = &c
	}
	if opts.MaxRowsPerTable == 0 {
		opts.MaxRowsPerTable = DefaultMaxRowsPerTable
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	b := opts.BatchSize
	if b <= 0 {
		b = 32768
	}
	workers := opts.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &query{opts: opts, fctx: fctx, mem: &budget{limit: memoryLimit(opts.MemoryLimit)},
		parents: map[plan.Node]int{}, tees: map[plan.Node]*tee{}, batch: b, workers: workers}
}

func (q *query) countParents(n plan.Node) {
	q.parents[n]++
	if q.parents[n] > 1 {
		return
	}
	for _, c := range n.Children() {
		q.countParents(c)
	}
}

// operator is a physical operator: next returns the next batch (never
// empty), or nil at the end. close releases what the operator holds and
// tells its inputs to stop; next is not called after close.
type operator interface {
	next(ctx context.Context) (arrow.Record, error)
	close()
}

// build makes the operator of a plan node. A node with several parents
// gets one operator and a buffer (tee) that each parent reads.
func (q *query) build(n plan.Node) (operator, error) {
	if op, ok := q.sources[n]; ok {
		delete(q.sources, n)
		return op, nil
	}
	if q.parents[n] > 1 {
		t, ok := q.tees[n]
		if !ok {
			op, err := q.buildNode(n)
			if err != nil {
				return nil, err
			}
			t = &tee{src: op, q: q, name: opName(n)}
			q.tees[n] = t
		}
		return t.reader(), nil
	}
	return q.buildNode(n)
}

func (q *query) buildNode(n plan.Node) (op operator, err error) {
	// Maps, filters and aggregates over a file scan may run per part of
	// the scan on several goroutines (parallel.go).
	switch n := n.(type) {
	case *plan.Scan:
		op, err = q.newScan(n)
	case *plan.Map:
		if op, err = q.parallelChain(n); op == nil && err == nil {
			op, err = q.newMap(n)
		}
	case *plan.Filter:
		if op, err = q.parallelChain(n); op == nil && err == nil {
			op, err = q.newFilter(n)
		}
	case *plan.Aggregate:
		n = q.codeJoinKeys(n)
		if s := q.countOnly(n); s != nil {
			op, err = q.newFileCount(n, s)
		} else if op, err = q.codedAggregate(n); op == nil && err == nil {
			if op, err = q.parallelChain(n); op == nil && err == nil {
				op, err = q.newAggregate(n)
			}
		}
	case *plan.Join:
		op, err = q.newJoin(n)
	case *plan.Limit:
		op, err = q.newLimit(n)
	case *plan.Union:
		op, err = q.newUnion(n)
	case *plan.TableFunc:
		op, err = q.newTableFunc(n)
	case *plan.BridgeSource:
		op, err = q.newBridgeSource(n)
	case *plan.Sink, *plan.BridgeSink:
		return nil, fmt.Errorf("exec: %s can only be a root of the plan", n.Describe())
	default:
		return nil, fmt.Errorf("exec: unsupported plan node %T", n)
	}
	if err != nil {
		return nil, err
	}
	return &guard{op: op, name: opName(n)}, nil
}

// opName names a node for errors: its kind and its position in the
// script.
func opName(n plan.Node) string {
	var kind string
	var pos plan.Pos
	switch n := n.(type) {
	case *plan.Scan:
		kind, pos = "Scan("+n.Table+")", n.Pos
	case *plan.Map:
		kind, pos = "Map", n.Pos
	case *plan.Filter:
		kind, pos = "Filter", n.Pos
	case *plan.Aggregate:
		kind, pos = "Aggregate("+n.Mode.String()+")", n.Pos
	case *plan.Join:
		kind, pos = "Join("+n.How.String()+")", n.Pos
	case *plan.Limit:
		kind, pos = "Limit", n.Pos
	case *plan.Union:
		kind, pos = "Union", n.Pos
	case *plan.TableFunc:
		kind, pos = "TableFunc("+n.Func+")", n.Pos
	case *plan.Sink:
		kind, pos = fmt.Sprintf("Sink(%q)", n.Name), n.Pos
	case *plan.BridgeSink:
		kind = fmt.Sprintf("BridgeSink(#%d)", n.ID)
	case *plan.BridgeSource:
		kind = fmt.Sprintf("BridgeSource(#%d)", n.ID)
	default:
		kind = fmt.Sprintf("%T", n)
	}
	if pos.Line > 0 {
		return kind + " at " + pos.String()
	}
	return kind
}

// guard turns a panic in an operator into an error naming it, and ends
// the query when its context ends: every operator's batch is a point of
// cancellation, so an operator that makes many batches of one input
// batch (a join fanning out) stops as soon as a scan would.
type guard struct {
	op   operator
	name string
}

func (g *guard) next(ctx context.Context) (rec arrow.Record, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			rec, err = nil, fmt.Errorf("exec: %s: panic: %v", g.name, r)
		}
	}()
	return g.op.next(ctx)
}

func (g *guard) close() {
	defer func() { _ = recover() }()
	g.op.close()
}

// budget counts the bytes held by a query's blocking operators, on
// every goroutine of the query.
type budget struct {
	limit int64
	used  atomic.Int64
}

// ErrMemoryLimit is wrapped by the error of a query that exceeded its
// memory limit.
var ErrMemoryLimit = errors.New("memory limit exceeded")

// grow accounts for delta more bytes held by op (delta may be negative).
func (b *budget) grow(op string, delta int64) error {
	used := b.used.Add(delta)
	if b.limit > 0 && delta > 0 && used > b.limit {
		return fmt.Errorf("exec: %s: %w: the query holds %d bytes, over its limit of %d", op, ErrMemoryLimit, used, b.limit)
	}
	return nil
}

// account tracks the bytes one operator holds against the budget.
type account struct {
	b    *budget
	op   string
	held int64
}

// set records that the operator now holds n bytes.
func (a *account) set(n int64) error {
	d := n - a.held
	a.held = n
	return a.b.grow(a.op, d)
}

func (a *account) release() {
	a.b.grow(a.op, -a.held)
	a.held = 0
}
