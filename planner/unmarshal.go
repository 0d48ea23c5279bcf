package planner

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pxq-dev/pxq/api/planpb"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// maxRelationCost bounds how many nodes Relation may visit when asked
// about any node of a decoded plan. Join.Relation asks both inputs, so a
// small hostile DAG of joins over a shared node could otherwise make one
// Relation call take exponential time.
const maxRelationCost = 1 << 14

// maxExprDepth bounds the nesting of decoded expressions, so that hostile
// input cannot exhaust the stack of later recursive passes.
const maxExprDepth = 1000

// Unmarshal decodes a plan written by Marshal. It checks the plan's shape
// (inputs defined before use, known enums, join outputs and union inputs
// that resolve), so that the result is safe to walk and to ask for
// relations; it never panics on bad input.
func Unmarshal(b []byte) (*plan.Plan, error) {
	var pb planpb.Plan
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("planner: unmarshal plan: %w", err)
	}
	return FromProto(&pb)
}

// UnmarshalDistributed decodes a plan written by MarshalDistributed.
func UnmarshalDistributed(b []byte) (*Distributed, error) {
	var pb planpb.Distributed
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("planner: unmarshal distributed plan: %w", err)
	}
	node, err := FromProto(pb.GetNode())
	if err != nil {
		return nil, fmt.Errorf("planner: node fragment: %w", err)
	}
	merge, err := FromProto(pb.GetMerge())
	if err != nil {
		return nil, fmt.Errorf("planner: merge fragment: %w", err)
	}
	return &Distributed{Node: node, Merge: merge}, nil
}

// FromProto converts a protobuf plan back into a plan, checking it as
// Unmarshal does.
func FromProto(pb *planpb.Plan) (*plan.Plan, error) {
	if pb == nil {
		return nil, errorf("unmarshal plan: missing")
	}
	d := decoder{nodes: map[uint32]plan.Node{}, cost: map[plan.Node]int64{}}
	for i, n := range pb.Nodes {
		if n.GetId() == 0 {
			return nil, errorf("unmarshal plan: node %d has no id", i)
		}
		if _, dup := d.nodes[n.Id]; dup {
			return nil, errorf("unmarshal plan: duplicate node id %d", n.Id)
		}
		node, err := d.node(n)
		if err != nil {
			return nil, fmt.Errorf("planner: unmarshal node %d: %w", n.Id, err)
		}
		c := relationCost(node, d.cost)
		if c > maxRelationCost {
			return nil, errorf("unmarshal node %d: plan too deep or too shared (relation cost %d)", n.Id, c)
		}
		d.cost[node] = c
		d.nodes[n.Id] = node
	}
	out := &plan.Plan{Now: pb.Now}
	for _, id := range pb.Sinks {
		s, ok := d.nodes[id].(*plan.Sink)
		if !ok {
			return nil, errorf("unmarshal plan: sink id %d is not a sink node", id)
		}
		out.Sinks = append(out.Sinks, s)
	}
	return out, nil
}

// decoder holds the nodes decoded so far, by id, and what asking each for
// its relation costs.
type decoder struct {
	nodes map[uint32]plan.Node
	cost  map[plan.Node]int64
}

// relationCost returns how many nodes n.Relation() visits, given the
// costs of n's children. Maps compute their relation from their own
// expressions; unions ask their first input only.
func relationCost(n plan.Node, cost map[plan.Node]int64) int64 {
	switch x := n.(type) {
	case *plan.Map, *plan.Scan, *plan.TableFunc, *plan.BridgeSource:
		return 1
	case *plan.Union:
		return 1 + cost[x.Inputs[0]]
	}
	total := int64(1)
	for _, c := range n.Children() {
		total += cost[c]
		if total > maxRelationCost {
			return total
		}
	}
	return total
}

// input returns an already decoded node.
func (d *decoder) input(id uint32) (plan.Node, error) {
	n, ok := d.nodes[id]
	if !ok {
		return nil, fmt.Errorf("input %d is not defined before its use", id)
	}
	if _, isSink := n.(*plan.Sink); isSink {
		return nil, fmt.Errorf("input %d is a sink", id)
	}
	return n, nil
}

func (d *decoder) node(n *planpb.Node) (plan.Node, error) {
	pos := posOf(n.Pos)
	switch op := n.Op.(type) {
	case *planpb.Node_Scan:
		s := op.Scan
		if s == nil {
			return nil, fmt.Errorf("empty scan")
		}
		rel, err := relationOf(s.Relation)
		if err != nil {
			return nil, err
		}
		if len(s.Columns) != len(rel) {
			return nil, fmt.Errorf("scan of %s: %d columns but %d in its relation", s.Table, len(s.Columns), len(rel))
		}
		out := &plan.Scan{Table: s.Table, Columns: s.Columns, Rel: rel, Start: s.Start, End: s.End, Limit: s.Limit, Pos: pos}
		if s.Filter != nil {
			if out.Filter, err = exprOf(s.Filter, 0); err != nil {
				return nil, fmt.Errorf("scan filter: %w", err)
			}
		}
		return out, nil
	case *planpb.Node_Map:
		in, err := d.input(op.Map.GetInput())
		if err != nil {
			return nil, err
		}
		out := &plan.Map{Input: in, Pos: pos}
		for _, ne := range op.Map.GetExprs() {
			e, err := exprOf(ne.GetExpr(), 0)
			if err != nil {
				return nil, fmt.Errorf("map column %s: %w", ne.GetName(), err)
			}
			out.Exprs = append(out.Exprs, plan.NamedExpr{Name: ne.GetName(), Expr: e})
		}
		return out, nil
	case *planpb.Node_Filter:
		in, err := d.input(op.Filter.GetInput())
		if err != nil {
			return nil, err
		}
		cond, err := exprOf(op.Filter.GetCond(), 0)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		return &plan.Filter{Input: in, Cond: cond, Pos: pos}, nil
	case *planpb.Node_Aggregate:
		a := op.Aggregate
		in, err := d.input(a.GetInput())
		if err != nil {
			return nil, err
		}
		mode := plan.AggMode(a.GetMode())
		if mode < plan.AggFull || mode > plan.AggFinal {
			return nil, fmt.Errorf("unknown aggregate mode %d", a.GetMode())
		}
		out := &plan.Aggregate{Input: in, Groups: a.Groups, Mode: mode, Pos: pos}
		for _, ag := range a.Aggs {
			args, err := exprsOf(ag.Args, 0)
			if err != nil {
				return nil, fmt.Errorf("aggregate %s: %w", ag.Name, err)
			}
			out.Aggs = append(out.Aggs, plan.AggExpr{Name: ag.Name, Func: ag.Func, Args: args, T: types.DataType(ag.Type), Sem: types.SemanticType(ag.Semantic)})
		}
		return out, nil
	case *planpb.Node_Join:
		return d.join(op.Join, pos)
	case *planpb.Node_Limit:
		in, err := d.input(op.Limit.GetInput())
		if err != nil {
			return nil, err
		}
		return &plan.Limit{Input: in, N: op.Limit.GetN(), Pos: pos}, nil
	case *planpb.Node_Union:
		ids := op.Union.GetInputs()
		if len(ids) == 0 {
			return nil, fmt.Errorf("union without inputs")
		}
		out := &plan.Union{Pos: pos}
		for _, id := range ids {
			in, err := d.input(id)
			if err != nil {
				return nil, err
			}
			out.Inputs = append(out.Inputs, in)
		}
		return out, nil
	case *planpb.Node_TableFunc:
		tf := op.TableFunc
		rel, err := relationOf(tf.GetRelation())
		if err != nil {
			return nil, err
		}
		out := &plan.TableFunc{Func: tf.GetFunc(), Rel: rel, Pos: pos}
		for _, a := range tf.GetArgs() {
			l, err := literalOf(a)
			if err != nil {
				return nil, fmt.Errorf("table function %s: %w", tf.GetFunc(), err)
			}
			out.Args = append(out.Args, l)
		}
		return out, nil
	case *planpb.Node_Sink:
		in, err := d.input(op.Sink.GetInput())
		if err != nil {
			return nil, err
		}
		return &plan.Sink{Input: in, Name: op.Sink.GetName(), Pos: pos}, nil
	case *planpb.Node_BridgeSink:
		in, err := d.input(op.BridgeSink.GetInput())
		if err != nil {
			return nil, err
		}
		id, err := bridgeID(op.BridgeSink.GetBridgeId())
		if err != nil {
			return nil, err
		}
		return &plan.BridgeSink{Input: in, ID: id}, nil
	case *planpb.Node_BridgeSource:
		rel, err := relationOf(op.BridgeSource.GetRelation())
		if err != nil {
			return nil, err
		}
		id, err := bridgeID(op.BridgeSource.GetBridgeId())
		if err != nil {
			return nil, err
		}
		return &plan.BridgeSource{ID: id, Rel: rel}, nil
	}
	return nil, fmt.Errorf("node without an operator")
}

func (d *decoder) join(j *planpb.Join, pos plan.Pos) (plan.Node, error) {
	left, err := d.input(j.GetLeft())
	if err != nil {
		return nil, err
	}
	right, err := d.input(j.GetRight())
	if err != nil {
		return nil, err
	}
	how := plan.JoinType(j.GetHow())
	if how < plan.InnerJoin || how > plan.OuterJoin {
		return nil, fmt.Errorf("unknown join type %d", j.GetHow())
	}
	if len(j.LeftOn) != len(j.RightOn) {
		return nil, fmt.Errorf("join on %d left and %d right keys", len(j.LeftOn), len(j.RightOn))
	}
	out := &plan.Join{Left: left, Right: right, How: how, LeftOn: j.LeftOn, RightOn: j.RightOn, Pos: pos}
	sides := [2]types.Relation{left.Relation(), right.Relation()}
	for _, c := range j.Output {
		if c.Side != 0 && c.Side != 1 {
			return nil, fmt.Errorf("join output %s: side %d", c.As, c.Side)
		}
		if sides[c.Side].Index(c.Name) < 0 {
			return nil, fmt.Errorf("join output %s: no column %s on side %d", c.As, c.Name, c.Side)
		}
		out.Output = append(out.Output, plan.JoinColumn{Side: int(c.Side), Name: c.Name, As: c.As})
	}
	return out, nil
}

func bridgeID(v int64) (int, error) {
	if v < 0 || v > 1<<31-1 {
		return 0, fmt.Errorf("bridge id %d out of range", v)
	}
	return int(v), nil
}

func posOf(p *planpb.Pos) plan.Pos {
	if p == nil {
		return plan.Pos{}
	}
	return plan.Pos{File: p.File, Line: p.Line, Col: p.Col}
}

func relationOf(cols []*planpb.Column) (types.Relation, error) {
	if cols == nil {
		return nil, nil
	}
	rel := make(types.Relation, len(cols))
	for i, c := range cols {
		if c == nil {
			return nil, fmt.Errorf("relation column %d missing", i)
		}
		rel[i] = types.Column{Name: c.Name, Type: types.DataType(c.Type), Semantic: types.SemanticType(c.Semantic), Desc: c.Desc}
	}
	return rel, nil
}

func exprsOf(es []*planpb.Expr, depth int) ([]plan.Expr, error) {
	if es == nil {
		return nil, nil
	}
	out := make([]plan.Expr, len(es))
	for i, x := range es {
		var err error
		if out[i], err = exprOf(x, depth); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func exprOf(e *planpb.Expr, depth int) (plan.Expr, error) {
	if depth > maxExprDepth {
		return nil, fmt.Errorf("expression nested deeper than %d", maxExprDepth)
	}
	switch k := e.GetKind().(type) {
	case *planpb.Expr_Column:
		c := k.Column
		return &plan.Column{Name: c.GetName(), T: types.DataType(c.GetType()), Sem: types.SemanticType(c.GetSemantic())}, nil
	case *planpb.Expr_Literal:
		return literalOf(k.Literal)
	case *planpb.Expr_Call:
		c := k.Call
		args, err := exprsOf(c.GetArgs(), depth+1)
		if err != nil {
			return nil, err
		}
		return &plan.Call{Func: c.GetFunc(), Args: args, T: types.DataType(c.GetType()), Sem: types.SemanticType(c.GetSemantic())}, nil
	}
	return nil, fmt.Errorf("empty expression")
}

func literalOf(l *planpb.Literal) (*plan.Literal, error) {
	if l == nil {
		return nil, fmt.Errorf("missing literal")
	}
	out := &plan.Literal{T: types.DataType(l.Type), Sem: types.SemanticType(l.Semantic)}
	switch v := l.Value.(type) {
	case nil:
	case *planpb.Literal_BoolValue:
		out.Value = v.BoolValue
	case *planpb.Literal_Int64Value:
		out.Value = v.Int64Value
	case *planpb.Literal_Float64Value:
		out.Value = v.Float64Value
	case *planpb.Literal_StringValue:
		out.Value = v.StringValue
	case *planpb.Literal_Uint128Value:
		out.Value = types.UInt128Value{High: v.Uint128Value.GetHigh(), Low: v.Uint128Value.GetLow()}
	}
	return out, nil
}
