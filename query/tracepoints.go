package query

import (
	"context"
	"fmt"
	"time"

	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/sources/pxtrace"
)

// Tracer is a Backend that deploys dynamic tracepoints (pxtrace): the
// engine on its node, a broker on every agent.
type Tracer interface {
	// Deploy upserts or deletes ts in order, waits up to wait for the
	// upserted ones to leave the pending state, and returns one status
	// per tracepoint of ts. A broker's status sums up its agents'.
	Deploy(ctx context.Context, ts []lang.Tracepoint, wait time.Duration) ([]pxtrace.Status, error)
}

// MutationWait is how long a query with Request.Mutation waits for its
// tracepoints before it returns them pending; QueryWait is how long
// another query waits for them (bpftrace compiles and attaches a program
// in about a second).
var (
	MutationWait = 5 * time.Second
	QueryWait    = 20 * time.Second
)

// deploy deploys c's tracepoints. A tracepoint that failed is the
// script's mistake at its UpsertTracepoint call (the kernel refused a
// probe, bpftrace is missing); one still pending ends a mutation query
// with Result.Pending, and any other with an error.
func (r *Runner) deploy(ctx context.Context, req Request, c *Compiled, res *Result) error {
	tr, ok := r.Backend.(Tracer)
	if !ok {
		tp := c.Tracepoints[0]
		return lang.TracepointError(tp, "this server cannot deploy dynamic tracepoints (it serves a capture or files)")
	}
	wait := QueryWait
	if req.Mutation {
		wait = MutationWait
	}
	sts, err := tr.Deploy(ctx, c.Tracepoints, wait)
	if err != nil {
		return err
	}
	res.Tracepoints = sts
	for i, st := range sts {
		if c.Tracepoints[i].Delete {
			continue
		}
		switch st.State {
		case pxtrace.Failed:
			return lang.TracepointError(c.Tracepoints[i], st.Err)
		case pxtrace.Pending:
			res.Pending = true
		}
	}
	if res.Pending && !req.Mutation {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i, st := range sts {
			if st.State == pxtrace.Pending {
				return lang.TracepointError(c.Tracepoints[i], fmt.Sprintf("still starting after %v", wait))
			}
		}
	}
	return nil
}
