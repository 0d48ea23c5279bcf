package planner

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/pxq-dev/pxq/api/planpb"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Marshal encodes p as a planpb.Plan. Every node is written once with an
// id, children first, so that nodes shared by several parents are still
// shared after Unmarshal. The encoding is deterministic.
func Marshal(p *plan.Plan) ([]byte, error) {
	pb, err := ToProto(p)
	if err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("planner: marshal plan: %w", err)
	}
	return b, nil
}

// MarshalDistributed encodes both fragments of d as a planpb.Distributed.
func MarshalDistributed(d *Distributed) ([]byte, error) {
	if d == nil {
		return nil, errorf("marshal distributed plan: nil")
	}
	node, err := ToProto(d.Node)
	if err != nil {
		return nil, fmt.Errorf("planner: node fragment: %w", err)
	}
	merge, err := ToProto(d.Merge)
	if err != nil {
		return nil, fmt.Errorf("planner: merge fragment: %w", err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&planpb.Distributed{Node: node, Merge: merge})
	if err != nil {
		return nil, fmt.Errorf("planner: marshal distributed plan: %w", err)
	}
	return b, nil
}

// ToProto converts p into its protobuf message.
func ToProto(p *plan.Plan) (*planpb.Plan, error) {
	if p == nil {
		return nil, errorf("marshal plan: nil")
	}
	e := &encoder{ids: map[plan.Node]uint32{}, out: &planpb.Plan{Now: p.Now}}
	var err error
	plan.Walk(p, func(n plan.Node) {
		if err == nil {
			err = e.node(n)
		}
	})
	if err != nil {
		return nil, err
	}
	for _, s := range p.Sinks {
		e.out.Sinks = append(e.out.Sinks, e.ids[s])
	}
	return e.out, nil
}

// encoder numbers nodes from 1 in the order it writes them.
type encoder struct {
	ids map[plan.Node]uint32
	out *planpb.Plan
}

func (e *encoder) node(n plan.Node) error {
	id := uint32(len(e.ids) + 1)
	pb := &planpb.Node{Id: id}
	in := func(i int) uint32 { return e.ids[n.Children()[i]] }
	var err error
	switch x := n.(type) {
	case *plan.Scan:
		s := &planpb.Scan{Table: x.Table, Columns: x.Columns, Relation: relationPB(x.Rel), Start: x.Start, End: x.End, Limit: x.Limit}
		if x.Filter != nil {
			if s.Filter, err = exprPB(x.Filter); err != nil {
				return fmt.Errorf("planner: %s: %w", x.Describe(), err)
			}
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Scan{Scan: s}
	case *plan.Map:
		m := &planpb.Map{Input: in(0)}
		for _, ne := range x.Exprs {
			ex, err := exprPB(ne.Expr)
			if err != nil {
				return fmt.Errorf("planner: map column %s: %w", ne.Name, err)
			}
			m.Exprs = append(m.Exprs, &planpb.NamedExpr{Name: ne.Name, Expr: ex})
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Map{Map: m}
	case *plan.Filter:
		cond, err := exprPB(x.Cond)
		if err != nil {
			return fmt.Errorf("planner: %s: %w", x.Describe(), err)
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Filter{Filter: &planpb.Filter{Input: in(0), Cond: cond}}
	case *plan.Aggregate:
		a := &planpb.Aggregate{Input: in(0), Groups: x.Groups, Mode: planpb.AggMode(x.Mode)}
		for _, ag := range x.Aggs {
			args, err := exprsPB(ag.Args)
			if err != nil {
				return fmt.Errorf("planner: aggregate %s: %w", ag.Name, err)
			}
			a.Aggs = append(a.Aggs, &planpb.AggExpr{Name: ag.Name, Func: ag.Func, Args: args, Type: planpb.DataType(ag.T), Semantic: int32(ag.Sem)})
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Aggregate{Aggregate: a}
	case *plan.Join:
		j := &planpb.Join{Left: in(0), Right: in(1), How: planpb.JoinType(x.How), LeftOn: x.LeftOn, RightOn: x.RightOn}
		for _, c := range x.Output {
			j.Output = append(j.Output, &planpb.JoinColumn{Side: int32(c.Side), Name: c.Name, As: c.As})
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Join{Join: j}
	case *plan.Limit:
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Limit{Limit: &planpb.Limit{Input: in(0), N: x.N}}
	case *plan.Union:
		u := &planpb.Union{}
		for i := range x.Inputs {
			u.Inputs = append(u.Inputs, in(i))
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Union{Union: u}
	case *plan.TableFunc:
		tf := &planpb.TableFunc{Func: x.Func, Relation: relationPB(x.Rel)}
		for _, a := range x.Args {
			l, err := literalPB(a)
			if err != nil {
				return fmt.Errorf("planner: %s: %w", x.Describe(), err)
			}
			tf.Args = append(tf.Args, l)
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_TableFunc{TableFunc: tf}
	case *plan.Sink:
		if x.OTel != nil {
			// Export sinks run where the query's output is, never on agents.
			return fmt.Errorf("planner: %s: an export sink is not serialized", x.Describe())
		}
		pb.Pos, pb.Op = posPB(x.Pos), &planpb.Node_Sink{Sink: &planpb.Sink{Input: in(0), Name: x.Name}}
	case *plan.BridgeSink:
		pb.Op = &planpb.Node_BridgeSink{BridgeSink: &planpb.BridgeSink{Input: in(0), BridgeId: int64(x.ID)}}
	case *plan.BridgeSource:
		pb.Op = &planpb.Node_BridgeSource{BridgeSource: &planpb.BridgeSource{BridgeId: int64(x.ID), Relation: relationPB(x.Rel)}}
	default:
		return errorf("marshal: unknown node type %T", n)
	}
	e.ids[n] = id
	e.out.Nodes = append(e.out.Nodes, pb)
	return nil
}

// posPB returns nil for the zero position, which keeps messages small.
func posPB(p plan.Pos) *planpb.Pos {
	if p == (plan.Pos{}) {
		return nil
	}
	return &planpb.Pos{File: p.File, Line: p.Line, Col: p.Col}
}

func relationPB(r types.Relation) []*planpb.Column {
	out := make([]*planpb.Column, len(r))
	for i, c := range r {
		out[i] = &planpb.Column{Name: c.Name, Type: planpb.DataType(c.Type), Semantic: int32(c.Semantic), Desc: c.Desc}
	}
	return out
}

func exprsPB(es []plan.Expr) ([]*planpb.Expr, error) {
	out := make([]*planpb.Expr, len(es))
	for i, x := range es {
		var err error
		if out[i], err = exprPB(x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func exprPB(e plan.Expr) (*planpb.Expr, error) {
	switch x := e.(type) {
	case *plan.Column:
		return &planpb.Expr{Kind: &planpb.Expr_Column{Column: &planpb.ColumnRef{Name: x.Name, Type: planpb.DataType(x.T), Semantic: int32(x.Sem)}}}, nil
	case *plan.Literal:
		l, err := literalPB(x)
		if err != nil {
			return nil, err
		}
		return &planpb.Expr{Kind: &planpb.Expr_Literal{Literal: l}}, nil
	case *plan.Call:
		args, err := exprsPB(x.Args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.Func, err)
		}
		return &planpb.Expr{Kind: &planpb.Expr_Call{Call: &planpb.Call{Func: x.Func, Args: args, Type: planpb.DataType(x.T), Semantic: int32(x.Sem)}}}, nil
	case nil:
		return nil, fmt.Errorf("missing expression")
	}
	return nil, fmt.Errorf("unknown expression type %T", e)
}

func literalPB(l *plan.Literal) (*planpb.Literal, error) {
	if l == nil {
		return nil, fmt.Errorf("missing literal")
	}
	out := &planpb.Literal{Type: planpb.DataType(l.T), Semantic: int32(l.Sem)}
	switch v := l.Value.(type) {
	case nil:
	case bool:
		out.Value = &planpb.Literal_BoolValue{BoolValue: v}
	case int64:
		out.Value = &planpb.Literal_Int64Value{Int64Value: v}
	case float64:
		out.Value = &planpb.Literal_Float64Value{Float64Value: v}
	case string:
		out.Value = &planpb.Literal_StringValue{StringValue: v}
	case types.UInt128Value:
		out.Value = &planpb.Literal_Uint128Value{Uint128Value: &planpb.UInt128{High: v.High, Low: v.Low}}
	default:
		return nil, fmt.Errorf("literal %v: unsupported Go type %T", v, v)
	}
	return out, nil
}
