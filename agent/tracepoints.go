package agent

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/sources/pxtrace"
)

// maxTracepointWait bounds how long a Tracepoints call waits for
// programs to start.
const maxTracepointWait = time.Minute

// Tracepoints upserts or deletes the dynamic tracepoints a broker sends
// (a script's pxtrace calls) on this node, or lists them. A spec the
// node cannot take (a table of that name with other columns) is
// INVALID_ARGUMENT; a program bpftrace cannot run is a FAILED status.
func (s *Service) Tracepoints(ctx context.Context, req *agentpb.TracepointsRequest) (*agentpb.TracepointsResponse, error) {
	m := s.cfg.Engine.Tracepoints()
	if len(req.GetOps()) == 0 {
		return &agentpb.TracepointsResponse{Statuses: statusesToPB(m.Status())}, nil
	}
	ts := make([]lang.Tracepoint, len(req.GetOps()))
	for i, op := range req.GetOps() {
		ts[i] = lang.Tracepoint{Delete: op.GetDelete(), Spec: pxtrace.Spec{Name: op.GetName(), Table: op.GetTable(), TTL: time.Duration(op.GetTtlNs())}}
		for _, p := range op.GetPrograms() {
			ts[i].Spec.Programs = append(ts[i].Spec.Programs, pxtrace.Choice{Text: p.GetText(), MinKernel: p.GetMinKernel(), MaxKernel: p.GetMaxKernel()})
		}
	}
	wait := min(time.Duration(req.GetWaitMs())*time.Millisecond, maxTracepointWait)
	sts, err := engine.DeployOn(ctx, m, ts, wait)
	var le *lang.Error
	if errors.As(err, &le) {
		return nil, status.Error(codes.InvalidArgument, le.Msg)
	} else if err != nil {
		return nil, err
	}
	s.cfg.Log.Info("tracepoints", "ops", len(ts))
	return &agentpb.TracepointsResponse{Statuses: statusesToPB(sts)}, nil
}

func statusesToPB(sts []pxtrace.Status) []*agentpb.TracepointStatus {
	out := make([]*agentpb.TracepointStatus, len(sts))
	for i, s := range sts {
		out[i] = &agentpb.TracepointStatus{Name: s.Name, Table: s.Table, State: int32(s.State), Error: s.Err}
		if !s.Expires.IsZero() {
			out[i].ExpiresNs = s.Expires.UnixNano()
		}
	}
	return out
}
