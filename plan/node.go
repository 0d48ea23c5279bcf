package plan

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/pxq-dev/pxq/types"
)

// Node is a relational operator. Children are its inputs; Relation is the
// schema of its output.
type Node interface {
	Relation() types.Relation
	Children() []Node
	// WithChildren returns a copy of the node with other inputs (same count).
	WithChildren([]Node) Node
	// Describe renders the node alone on one line, for EXPLAIN.
	Describe() string
}

// Scan reads a table of the store. Columns selects and orders the columns
// read; Start/End bound time_ (ns since the epoch; Start inclusive, End
// exclusive, 0 = unbounded). Filter and Limit are pushed down by the
// planner: the scan returns only rows where Filter holds, and at most Limit
// rows (0 = no limit).
type Scan struct {
	Table   string
	Columns []string
	Rel     types.Relation // the relation of the columns read, in order
	Start   int64
	End     int64
	Filter  Expr
	Limit   int64
	Pos     Pos
}

// Map computes its output columns, in order, from its input's rows.
type Map struct {
	Input Node
	Exprs []NamedExpr
	Pos   Pos
}

// Filter keeps the rows where Cond (BOOLEAN) holds.
type Filter struct {
	Input Node
	Cond  Expr
	Pos   Pos
}

// AggMode says which part of a two-phase aggregate a node computes.
type AggMode int

const (
	// AggFull aggregates raw rows into final values in one step.
	AggFull AggMode = iota
	// AggPartial aggregates raw rows into serialized partial states: the
	// output has the group columns then one STRING column per aggregate
	// holding its state.
	AggPartial
	// AggFinal merges the partial states produced by AggPartial nodes and
	// finalizes them; its input has the partial relation.
	AggFinal
)

func (m AggMode) String() string {
	return [...]string{"full", "partial", "final"}[m]
}

// Aggregate groups rows by the Groups columns and computes Aggs per group.
// With no Groups it yields exactly one row (for AggFull/AggFinal). Its
// output is the group columns then the aggregates, in order.
type Aggregate struct {
	Input  Node
	Groups []string
	Aggs   []AggExpr
	Mode   AggMode
	Pos    Pos
}

// JoinType is the kind of a join.
type JoinType int

const (
	InnerJoin JoinType = iota
	LeftJoin
	RightJoin
	OuterJoin
)

func (j JoinType) String() string { return [...]string{"inner", "left", "right", "outer"}[j] }

// JoinColumn is one output column of a join: column Name of input Side
// (0 left, 1 right), renamed to As.
type JoinColumn struct {
	Side int
	Name string
	As   string
}

// Join is an equi-join of Left and Right on LeftOn[i] == RightOn[i].
// Unmatched rows of an outer side get zero values (0, "", false) in the
// other side's columns.
type Join struct {
	Left, Right Node
	How         JoinType
	LeftOn      []string
	RightOn     []string
	Output      []JoinColumn
	Pos         Pos
	// rel caches Relation: without it, joins that share inputs would
	// compute their inputs' relations exponentially often.
	rel atomic.Pointer[types.Relation]
}

// Limit passes at most N rows.
type Limit struct {
	Input Node
	N     int64
	Pos   Pos
}

// Union concatenates inputs that have the same column names and types (the
// first input's order; others are reordered by name).
type Union struct {
	Inputs []Node
	Pos    Pos
}

// TableFunc produces rows from a table function (GetTables, GetSchemas, …).
type TableFunc struct {
	Func string
	Args []*Literal
	Rel  types.Relation
	Pos  Pos
}

// Sink names an output table of the query. An export sink (OTel set)
// sends its rows to OpenTelemetry instead of to the query's output.
type Sink struct {
	Input Node
	Name  string
	Pos   Pos
	OTel  *OTelExport
}

// BridgeSink ends a fragment of a distributed plan: its rows are sent to
// the fragment that holds the BridgeSource with the same ID.
type BridgeSink struct {
	Input Node
	ID    int
}

// BridgeSource starts a fragment with the rows that the BridgeSinks of the
// same ID send (from every agent).
type BridgeSource struct {
	ID  int
	Rel types.Relation
}

func (s *Scan) Relation() types.Relation { return s.Rel }
func (m *Map) Relation() types.Relation {
	rel := make(types.Relation, len(m.Exprs))
	for i, e := range m.Exprs {
		rel[i] = types.Column{Name: e.Name, Type: e.Expr.Type(), Semantic: e.Expr.Semantic()}
	}
	return rel
}
func (f *Filter) Relation() types.Relation { return f.Input.Relation() }
func (a *Aggregate) Relation() types.Relation {
	in := a.Input.Relation()
	var rel types.Relation
	for _, g := range a.Groups {
		if i := in.Index(g); i >= 0 {
			rel = append(rel, in[i])
		} else {
			rel = append(rel, types.Column{Name: g})
		}
	}
	for _, x := range a.Aggs {
		if a.Mode == AggPartial {
			rel = append(rel, types.Column{Name: x.Name, Type: types.String, Semantic: types.STNone})
		} else {
			rel = append(rel, types.Column{Name: x.Name, Type: x.T, Semantic: x.Sem})
		}
	}
	return rel
}
func (j *Join) Relation() types.Relation {
	if r := j.rel.Load(); r != nil {
		return *r
	}
	sides := [2]types.Relation{j.Left.Relation(), j.Right.Relation()}
	rel := make(types.Relation, len(j.Output))
	for i, c := range j.Output {
		src := sides[c.Side][sides[c.Side].Index(c.Name)]
		src.Name = c.As
		rel[i] = src
	}
	j.rel.Store(&rel)
	return rel
}
func (l *Limit) Relation() types.Relation        { return l.Input.Relation() }
func (u *Union) Relation() types.Relation        { return u.Inputs[0].Relation() }
func (t *TableFunc) Relation() types.Relation    { return t.Rel }
func (s *Sink) Relation() types.Relation         { return s.Input.Relation() }
func (b *BridgeSink) Relation() types.Relation   { return b.Input.Relation() }
func (b *BridgeSource) Relation() types.Relation { return b.Rel }

func (s *Scan) Children() []Node         { return nil }
func (m *Map) Children() []Node          { return []Node{m.Input} }
func (f *Filter) Children() []Node       { return []Node{f.Input} }
func (a *Aggregate) Children() []Node    { return []Node{a.Input} }
func (j *Join) Children() []Node         { return []Node{j.Left, j.Right} }
func (l *Limit) Children() []Node        { return []Node{l.Input} }
func (u *Union) Children() []Node        { return u.Inputs }
func (t *TableFunc) Children() []Node    { return nil }
func (s *Sink) Children() []Node         { return []Node{s.Input} }
func (b *BridgeSink) Children() []Node   { return []Node{b.Input} }
func (b *BridgeSource) Children() []Node { return nil }

func (s *Scan) WithChildren([]Node) Node         { c := *s; return &c }
func (m *Map) WithChildren(in []Node) Node       { c := *m; c.Input = in[0]; return &c }
func (f *Filter) WithChildren(in []Node) Node    { c := *f; c.Input = in[0]; return &c }
func (a *Aggregate) WithChildren(in []Node) Node { c := *a; c.Input = in[0]; return &c }
func (j *Join) WithChildren(in []Node) Node {
	c := j.Clone()
	c.Left, c.Right = in[0], in[1]
	return c
}

// Clone returns a copy of j (use it instead of copying the struct, which
// would copy the cached relation).
func (j *Join) Clone() *Join {
	return &Join{Left: j.Left, Right: j.Right, How: j.How, LeftOn: j.LeftOn, RightOn: j.RightOn, Output: j.Output, Pos: j.Pos}
}
func (l *Limit) WithChildren(in []Node) Node { c := *l; c.Input = in[0]; return &c }
func (u *Union) WithChildren(in []Node) Node {
	c := *u
	c.Inputs = append([]Node(nil), in...)
	return &c
}
func (t *TableFunc) WithChildren([]Node) Node     { c := *t; return &c }
func (s *Sink) WithChildren(in []Node) Node       { c := *s; c.Input = in[0]; return &c }
func (b *BridgeSink) WithChildren(in []Node) Node { c := *b; c.Input = in[0]; return &c }
func (b *BridgeSource) WithChildren([]Node) Node  { c := *b; return &c }

func (s *Scan) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scan %s [%s]", s.Table, strings.Join(s.Columns, ", "))
	if s.Start != 0 || s.End != 0 {
		fmt.Fprintf(&b, " time=[%d, %d)", s.Start, s.End)
	}
	if s.Filter != nil {
		fmt.Fprintf(&b, " filter=%s", s.Filter)
	}
	if s.Limit > 0 {
		fmt.Fprintf(&b, " limit=%d", s.Limit)
	}
	return b.String()
}
func (m *Map) Describe() string {
	parts := make([]string, len(m.Exprs))
	for i, e := range m.Exprs {
		if c, ok := e.Expr.(*Column); ok && c.Name == e.Name {
			parts[i] = e.Name
		} else {
			parts[i] = e.Name + "=" + e.Expr.String()
		}
	}
	return "Map [" + strings.Join(parts, ", ") + "]"
}
func (f *Filter) Describe() string { return "Filter " + f.Cond.String() }
func (a *Aggregate) Describe() string {
	aggs := make([]string, len(a.Aggs))
	for i, x := range a.Aggs {
		aggs[i] = x.String()
	}
	return fmt.Sprintf("Aggregate(%s) by [%s] [%s]", a.Mode, strings.Join(a.Groups, ", "), strings.Join(aggs, ", "))
}
func (j *Join) Describe() string {
	return fmt.Sprintf("Join %s on %v = %v", j.How, j.LeftOn, j.RightOn)
}
func (l *Limit) Describe() string     { return fmt.Sprintf("Limit %d", l.N) }
func (u *Union) Describe() string     { return fmt.Sprintf("Union (%d inputs)", len(u.Inputs)) }
func (t *TableFunc) Describe() string { return "TableFunc " + t.Func }
func (s *Sink) Describe() string {
	if s.OTel != nil {
		return fmt.Sprintf("Sink %q %s", s.Name, s.OTel)
	}
	return fmt.Sprintf("Sink %q", s.Name)
}
func (b *BridgeSink) Describe() string   { return fmt.Sprintf("BridgeSink #%d", b.ID) }
func (b *BridgeSource) Describe() string { return fmt.Sprintf("BridgeSource #%d", b.ID) }

// Plan is a query: a DAG of nodes reached from its sinks, one per output
// table, in the order the script produced them. Nodes may be shared between
// sinks.
type Plan struct {
	Sinks []*Sink
	// Now is the query's "now" (ns since the epoch) against which relative
	// times were resolved; functions like px.now() read it.
	Now int64
}

// Format renders the plan as an indented tree per sink. Nodes shared by
// several parents are printed once and referred to afterwards.
func Format(p *Plan) string {
	var b strings.Builder
	ids := map[Node]int{}
	var walk func(n Node, depth int)
	walk = func(n Node, depth int) {
		ind := strings.Repeat("  ", depth)
		if id, ok := ids[n]; ok {
			fmt.Fprintf(&b, "%s(see #%d)\n", ind, id)
			return
		}
		id := len(ids) + 1
		ids[n] = id
		fmt.Fprintf(&b, "%s#%d %s\n", ind, id, n.Describe())
		for _, c := range n.Children() {
			walk(c, depth+1)
		}
	}
	for _, s := range p.Sinks {
		walk(s, 0)
	}
	return b.String()
}

// Walk visits every node reachable from p's sinks once, children before
// parents.
func Walk(p *Plan, f func(Node)) {
	seen := map[Node]bool{}
	var visit func(Node)
	visit = func(n Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, c := range n.Children() {
			visit(c)
		}
		f(n)
	}
	for _, s := range p.Sinks {
		visit(s)
	}
}
