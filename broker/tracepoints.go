package broker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/sources/pxtrace"
)

var _ query.Tracer = (*Broker)(nil)

// Deploy sends a script's tracepoints to every agent that answers, waits
// up to wait for them to start there, and sums up each one's states: it
// failed if it failed on some agent (the error names the agents), is
// pending while it is pending on one, else running. The tables they
// create are in the next catalog, which Deploy makes the broker load.
func (b *Broker) Deploy(ctx context.Context, ts []lang.Tracepoint, wait time.Duration) ([]pxtrace.Status, error) {
	cat, err := b.loadCatalog(ctx)
	if err != nil {
		return nil, err
	}
	req := &agentpb.TracepointsRequest{WaitMs: wait.Milliseconds()}
	for _, tp := range ts {
		op := &agentpb.TracepointOp{Delete: tp.Delete, Name: tp.Spec.Name, Table: tp.Spec.Table, TtlNs: int64(tp.Spec.TTL)}
		for _, p := range tp.Spec.Programs {
			op.Programs = append(op.Programs, &agentpb.TraceProgram{Text: p.Text, MinKernel: p.MinKernel, MaxKernel: p.MaxKernel})
		}
		req.Ops = append(req.Ops, op)
	}
	per, err := b.askTracepoints(ctx, cat, req, wait+10*time.Second)
	// Whatever happened, the agents' tables may have changed.
	b.mu.Lock()
	b.catalog = nil
	b.mu.Unlock()
	if err != nil {
		var first lang.Tracepoint
		for _, tp := range ts {
			if !tp.Delete {
				first = tp
				break
			}
		}
		return nil, lang.TracepointError(first, err.Error())
	}
	out := make([]pxtrace.Status, len(ts))
	for i, tp := range ts {
		var sts []agentTracepoint
		for _, a := range per {
			st := a.statuses[tp.Spec.Name]
			st.agent = a.agent
			sts = append(sts, st)
		}
		out[i] = merge(tp.Spec.Name, tp.Spec.Table, sts)
	}
	return out, nil
}

// TracepointStatus answers GetTracepointStatus: every agent's
// tracepoints, one row per name (tablefuncs.Tracepoints).
func (b *Broker) TracepointStatus(ctx context.Context) ([]tablefuncs.TracepointStatus, error) {
	cat, err := b.loadCatalog(ctx)
	if err != nil {
		return nil, err
	}
	per, err := b.askTracepoints(ctx, cat, &agentpb.TracepointsRequest{}, b.cfg.InfoTimeout)
	if err != nil {
		return nil, err
	}
	tables := map[string]string{}
	for _, a := range per {
		for name, st := range a.statuses {
			tables[name] = st.table
		}
	}
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	var rows []tablefuncs.TracepointStatus
	for _, n := range names {
		var sts []agentTracepoint
		for _, a := range per {
			if st, ok := a.statuses[n]; ok {
				st.agent = a.agent
				sts = append(sts, st)
			}
		}
		s := merge(n, tables[n], sts)
		rows = append(rows, tablefuncs.TracepointStatus{ID: s.ID, Name: n, State: s.State.String(), Status: s.Err, Tables: []string{tables[n]}})
	}
	return rows, nil
}

// agentTracepoint is one tracepoint's status on one agent.
type agentTracepoint struct {
	agent string
	table string
	state pxtrace.State
	err   string
}

type agentTracepoints struct {
	agent    string
	statuses map[string]agentTracepoint
}

// askTracepoints sends req to every agent that answered Info. An agent
// refusing a spec (INVALID_ARGUMENT) is an error; one that cannot be
// reached reports every tracepoint failed there.
func (b *Broker) askTracepoints(ctx context.Context, cat *catalog, req *agentpb.TracepointsRequest, timeout time.Duration) ([]agentTracepoints, error) {
	var mu sync.Mutex
	var out []agentTracepoints
	var refused []string
	var wg sync.WaitGroup
	for _, st := range cat.agents {
		if st.err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			resp, err := st.conn.client.Tracepoints(actx, req)
			a := agentTracepoints{agent: st.name(), statuses: map[string]agentTracepoint{}}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case status.Code(err) == codes.InvalidArgument:
				refused = append(refused, fmt.Sprintf("agent %s: %s", st.name(), status.Convert(err).Message()))
				return
			case err != nil:
				for _, op := range req.GetOps() {
					a.statuses[op.GetName()] = agentTracepoint{table: op.GetTable(), state: pxtrace.Failed, err: err.Error()}
				}
			default:
				for _, s := range resp.GetStatuses() {
					a.statuses[s.GetName()] = agentTracepoint{table: s.GetTable(), state: pxtrace.State(s.GetState()), err: s.GetError()}
				}
			}
			out = append(out, a)
		}()
	}
	wg.Wait()
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, fmt.Errorf("%s", strings.Join(refused, "; "))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].agent < out[j].agent })
	return out, nil
}

// merge sums up one tracepoint's states on the agents.
func merge(name, table string, sts []agentTracepoint) pxtrace.Status {
	s := pxtrace.Status{ID: pxtrace.ID(name), Name: name, Table: table}
	var failed []string
	pending, running := false, false
	for _, st := range sts {
		switch st.state {
		case pxtrace.Failed:
			failed = append(failed, fmt.Sprintf("agent %s: %s", st.agent, st.err))
		case pxtrace.Pending:
			pending = true
		case pxtrace.Running:
			running = true
		}
	}
	switch {
	case len(failed) > 0:
		s.State, s.Err = pxtrace.Failed, strings.Join(failed, "; ")
	case pending:
		s.State = pxtrace.Pending
	case running:
		s.State = pxtrace.Running
	default:
		s.State = pxtrace.Terminated
	}
	return s
}
