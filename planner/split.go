package planner

import (
	"fmt"

	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/plan"
)

// Distributed is a plan cut in two for a cluster.
type Distributed struct {
	// Node runs on every agent. Its outputs are BridgeSinks; because a
	// plan's roots are Sinks, each BridgeSink #N is wrapped in a Sink
	// named BridgeSinkName(N), which executors treat as the BridgeSink
	// itself.
	Node *plan.Plan
	// Merge runs on the broker. Its inputs are BridgeSources, each fed by
	// the BridgeSink of the same ID on every agent; its sinks are the
	// query's output tables.
	Merge *plan.Plan
}

// BridgeSinkName is the name of the Sink that wraps BridgeSink id in a
// node fragment.
func BridgeSinkName(id int) string { return fmt.Sprintf("__bridge_%d", id) }

// Split cuts p into the fragment every agent runs and the fragment the
// broker runs. The rules:
//
//   - Scans run on the agents, and so do table functions that describe
//     one agent (tablefuncs.OnAgents: GetAgentStatus, GetTables,
//     GetSchemas, _DebugTableInfo, …). Table functions that answer the
//     same everywhere (GetUDFList, …) run on the broker, once.
//   - Maps and filters over agent-side input stay on the agents.
//   - The first blocking operator over agent-side input is cut in two: a
//     full aggregate becomes AggPartial on the agents and AggFinal on the
//     broker; a limit becomes a local limit on the agents and the same
//     global limit on the broker.
//   - Joins and unions run on the broker; each of their agent-side inputs
//     reaches it through a bridge.
//   - Everything above the first blocking operator, and every sink, runs
//     on the broker.
//
// A node that several parents share gets one bridge that all of them
// read. Bridge IDs are numbered from 1 in the order the sinks reach them.
// Now is copied to both fragments. p must not already be split (no
// bridges, no partial or final aggregates).
func Split(p *plan.Plan) (*Distributed, error) {
	if p == nil {
		return nil, errorf("split: nil plan")
	}
	s := &splitter{agent: map[plan.Node]plan.Node{}, merge: map[plan.Node]plan.Node{}, bridges: map[plan.Node]*plan.BridgeSource{}}
	d := &Distributed{Node: &plan.Plan{Now: p.Now}, Merge: &plan.Plan{Now: p.Now}}
	s.node = d.Node
	for _, sink := range p.Sinks {
		in, err := s.onMerge(sink.Input)
		if err != nil {
			return nil, fmt.Errorf("planner: split sink %q: %w", sink.Name, err)
		}
		d.Merge.Sinks = append(d.Merge.Sinks, &plan.Sink{Input: in, Name: sink.Name, Pos: sink.Pos, OTel: sink.OTel})
	}
	return d, nil
}

// splitter remembers, per node of the logical plan, its agent-side copy
// (for nodes that run on agents), its broker-side copy, and the bridge
// that carries an agent-side node's rows to the broker.
type splitter struct {
	node    *plan.Plan
	agent   map[plan.Node]plan.Node
	merge   map[plan.Node]plan.Node
	bridges map[plan.Node]*plan.BridgeSource
}

// onAgents returns the agent-side version of n, or nil when n cannot run
// on the agents.
func (s *splitter) onAgents(n plan.Node) (plan.Node, error) {
	if out, ok := s.agent[n]; ok {
		return out, nil
	}
	var out plan.Node
	switch x := n.(type) {
	case *plan.Scan:
		out = x
	case *plan.TableFunc:
		if f := tablefuncs.Lookup(x.Func); f != nil && f.Where == tablefuncs.OnAgents {
			out = x
		}
	case *plan.Map, *plan.Filter:
		in, err := s.onAgents(n.Children()[0])
		if err != nil {
			return nil, err
		}
		if in != nil {
			out = n.WithChildren([]plan.Node{in})
		}
	case *plan.BridgeSink, *plan.BridgeSource:
		return nil, fmt.Errorf("plan is already split (%s)", n.Describe())
	case *plan.Aggregate:
		if x.Mode != plan.AggFull {
			return nil, fmt.Errorf("plan is already split (%s)", x.Describe())
		}
	}
	s.agent[n] = out
	return out, nil
}

// onMerge returns the broker-side version of n.
func (s *splitter) onMerge(n plan.Node) (plan.Node, error) {
	if out, ok := s.merge[n]; ok {
		return out, nil
	}
	out, err := s.mergeSide(n)
	if err != nil {
		return nil, err
	}
	s.merge[n] = out
	return out, nil
}

func (s *splitter) mergeSide(n plan.Node) (plan.Node, error) {
	local, err := s.onAgents(n)
	if err != nil {
		return nil, err
	}
	if local != nil {
		return s.bridge(n, local), nil
	}
	switch x := n.(type) {
	case *plan.Aggregate:
		in, err := s.onAgents(x.Input)
		if err != nil {
			return nil, err
		}
		if in != nil {
			partial := *x
			partial.Input, partial.Mode = in, plan.AggPartial
			final := *x
			final.Input, final.Mode = s.bridge(n, &partial), plan.AggFinal
			return &final, nil
		}
	case *plan.Limit:
		in, err := s.onAgents(x.Input)
		if err != nil {
			return nil, err
		}
		if in != nil {
			return &plan.Limit{Input: s.bridge(n, &plan.Limit{Input: in, N: x.N, Pos: x.Pos}), N: x.N, Pos: x.Pos}, nil
		}
	}
	kids := n.Children()
	newKids := make([]plan.Node, len(kids))
	for i, c := range kids {
		if newKids[i], err = s.onMerge(c); err != nil {
			return nil, err
		}
	}
	if len(kids) == 0 {
		return n, nil
	}
	return n.WithChildren(newKids), nil
}

// bridge sends the agent-side node local (standing for n of the logical
// plan) to the broker and returns the broker's BridgeSource for it.
func (s *splitter) bridge(n, local plan.Node) *plan.BridgeSource {
	if src, ok := s.bridges[n]; ok {
		return src
	}
	id := len(s.bridges) + 1
	src := &plan.BridgeSource{ID: id, Rel: local.Relation()}
	s.bridges[n] = src
	s.node.Sinks = append(s.node.Sinks, &plan.Sink{Input: &plan.BridgeSink{Input: local, ID: id}, Name: BridgeSinkName(id)})
	return src
}
