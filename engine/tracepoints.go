package engine

import (
	"context"
	"time"

	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/sources/pxtrace"
)

// Tracepoints returns the manager of this node's dynamic tracepoints
// (pxtrace), whose tables go to the engine's store. Closing it stops
// them.
func (e *Engine) Tracepoints() *pxtrace.Manager { return e.tracepoints }

var _ query.Tracer = (*Engine)(nil)

// Deploy upserts or deletes a script's tracepoints on this node and
// waits up to wait for them to start (query.Tracer).
func (e *Engine) Deploy(ctx context.Context, ts []lang.Tracepoint, wait time.Duration) ([]pxtrace.Status, error) {
	return DeployOn(ctx, e.tracepoints, ts, wait)
}

// DeployOn deploys ts with m: each upsert or delete in order, then waits
// up to wait for the upserted ones. A spec that cannot run (a program
// without fields, a table with other columns) is the script's mistake,
// at its call.
func DeployOn(ctx context.Context, m *pxtrace.Manager, ts []lang.Tracepoint, wait time.Duration) ([]pxtrace.Status, error) {
	out := make([]pxtrace.Status, len(ts))
	var names []string
	var idx []int
	for i, tp := range ts {
		if tp.Delete {
			out[i], _ = m.Delete(tp.Spec.Name)
			out[i].Name, out[i].ID = tp.Spec.Name, pxtrace.ID(tp.Spec.Name)
			if out[i].State == 0 {
				out[i].State = pxtrace.Terminated
			}
			continue
		}
		if _, err := m.Upsert(tp.Spec); err != nil {
			return nil, lang.TracepointError(tp, err.Error())
		}
		names, idx = append(names, tp.Spec.Name), append(idx, i)
	}
	if len(names) > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		for j, st := range m.Wait(wctx, names) {
			out[idx[j]] = st
		}
	}
	return out, nil
}

// tracepointStatus answers GetTracepointStatus from a node's manager.
type tracepointStatus struct{ m *pxtrace.Manager }

func (t tracepointStatus) TracepointStatus(context.Context) ([]tablefuncs.TracepointStatus, error) {
	return TracepointRows(t.m.Status()), nil
}

// TracepointRows turns statuses into GetTracepointStatus's rows.
func TracepointRows(sts []pxtrace.Status) []tablefuncs.TracepointStatus {
	out := make([]tablefuncs.TracepointStatus, 0, len(sts))
	for _, s := range sts {
		r := tablefuncs.TracepointStatus{ID: s.ID, Name: s.Name, State: s.State.String(), Status: s.Err}
		if s.Table != "" {
			r.Tables = []string{s.Table}
		}
		out = append(out, r)
	}
	return out
}
