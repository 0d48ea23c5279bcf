// Package agent is the service a pxq agent runs on every node: it tells a
// broker which tables its store holds, and runs the node fragments of
// distributed plans on that store, streaming each bridge sink's batches
// back as Arrow IPC. Sources (eBPF, /proc) fill the store; they are
// started by the command, not here.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/api/arrowipc"
	"github.com/pxq-dev/pxq/api/relation"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/table"
)

// MaxMessageBytes bounds the Arrow bytes of one streamed batch: bigger
// record batches are sent as several slices. gRPC clients accept 4 MiB
// messages by default.
const MaxMessageBytes = 1 << 20

// Config configures an agent service.
type Config struct {
	// Engine holds the store, the metadata and the node's identity.
	Engine *engine.Engine
	// Hostname and ASID identify the agent to the broker.
	Hostname string
	ASID     uint32
	// Log receives one line per fragment; slog.Default() when nil.
	Log *slog.Logger
	// Gate admits fragments, each reserving the engine's per-query
	// memory limit; every fragment is admitted when nil.
	Gate *query.Gate
}

// Service implements agentpb.AgentServiceServer.
type Service struct {
	agentpb.UnimplementedAgentServiceServer
	cfg   Config
	start time.Time
}

// New returns the agent service of an engine.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg, start: time.Now()}
}

// Info describes the agent and every table of its store.
func (s *Service) Info(ctx context.Context, _ *agentpb.InfoRequest) (*agentpb.InfoResponse, error) {
	resp := &agentpb.InfoResponse{Hostname: s.cfg.Hostname, Asid: s.cfg.ASID, Version: engine.Version, StartTimeNs: s.start.UnixNano()}
	resp.MetadataMode, resp.Metadata = metadataMode(s.cfg.Engine.Metadata())
	for _, t := range s.cfg.Engine.Store().Tables() {
		st := t.Stats()
		resp.Tables = append(resp.Tables, &agentpb.Table{Name: t.Name(), Desc: t.Desc(), Columns: relation.ToPB(t.Relation()), Rows: st.Rows, Bytes: st.Bytes})
	}
	return resp, nil
}

// Execute runs the requested bridge sinks of a node fragment and streams
// their batches. Cancelling the call (the broker's query ended, or its
// client went away) stops the fragment.
func (s *Service) Execute(req *agentpb.ExecuteRequest, stream agentpb.AgentService_ExecuteServer) error {
	start := time.Now()
	p, err := planner.FromProto(req.GetFragment())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "agent %s: query %s: bad fragment: %v", s.cfg.Hostname, req.GetQueryId(), err)
	}
	roots, err := bridgeRoots(p, req.GetBridgeIds())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "agent %s: query %s: %v", s.cfg.Hostname, req.GetQueryId(), err)
	}
	b := &streamBridge{stream: stream}
	opts := s.cfg.Engine.ExecOptions(p.Now)
	opts.Bridge = b
	opts.MaxRowsPerTable = -1
	ctx, leave, err := s.cfg.Gate.Enter(stream.Context(), max(opts.MemoryLimit, 0))
	if err != nil {
		code := codes.ResourceExhausted
		if errors.Is(err, query.ErrShutdown) {
			code = codes.Unavailable
		}
		return status.Errorf(code, "agent %s: query %s: %v", s.cfg.Hostname, req.GetQueryId(), err)
	}
	defer leave()
	err = exec.ExecuteFragment(ctx, roots, p.Now, opts, nil)
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			// The broker cancelled: its query ended or has enough rows.
			s.cfg.Log.Debug("fragment cancelled", "query", req.GetQueryId(), "bridges", req.GetBridgeIds(), "elapsed", elapsed)
			return status.FromContextError(ctx.Err()).Err()
		}
		s.cfg.Log.Warn("fragment failed", "query", req.GetQueryId(), "bridges", req.GetBridgeIds(), "err", err, "elapsed", elapsed)
		var st interface{ GRPCStatus() *status.Status }
		if errors.As(err, &st) {
			return err
		}
		return status.Errorf(codes.Internal, "agent %s: query %s: %v", s.cfg.Hostname, req.GetQueryId(), err)
	}
	s.cfg.Log.Debug("fragment done", "query", req.GetQueryId(), "bridges", req.GetBridgeIds(), "rows", b.rows, "bytes", b.bytes, "elapsed", elapsed)
	return stream.Send(&agentpb.ExecuteResponse{Msg: &agentpb.ExecuteResponse_Stats{Stats: &agentpb.Stats{
		RowsSent: b.rows, BytesSent: b.bytes, ExecTimeNs: elapsed.Nanoseconds()}}})
}

// bridgeRoots returns the BridgeSinks of a node fragment with the given
// ids (all of them when ids is empty).
func bridgeRoots(p *plan.Plan, ids []int32) ([]plan.Node, error) {
	byID := map[int]*plan.BridgeSink{}
	var all []plan.Node
	for _, s := range p.Sinks {
		bs, ok := s.Input.(*plan.BridgeSink)
		if !ok {
			return nil, fmt.Errorf("sink %q is not a bridge sink: an agent runs node fragments only", s.Name)
		}
		byID[bs.ID] = bs
		all = append(all, bs)
	}
	if len(ids) == 0 {
		return all, nil
	}
	roots := make([]plan.Node, len(ids))
	for i, id := range ids {
		bs, ok := byID[int(id)]
		if !ok {
			return nil, fmt.Errorf("the fragment has no bridge sink #%d", id)
		}
		roots[i] = bs
	}
	return roots, nil
}

// streamBridge sends a fragment's bridge batches on the gRPC stream. The
// executor calls it from one goroutine; Send blocks while the stream's
// flow-control window is full, which holds the fragment back when the
// broker reads slowly.
type streamBridge struct {
	stream      agentpb.AgentService_ExecuteServer
	rows, bytes int64
}

func (b *streamBridge) Source(id int) (exec.BatchReader, error) {
	return nil, fmt.Errorf("an agent's fragment cannot read bridge #%d", id)
}

func (b *streamBridge) Send(id int, rec arrow.Record) error {
	n := rec.NumRows()
	if n == 0 {
		return nil
	}
	step := n
	if size := table.RecordBytes(rec); size > MaxMessageBytes {
		step = max(1, n*MaxMessageBytes/size)
	}
	for lo := int64(0); lo < n; lo += step {
		part := rec
		if step < n {
			part = rec.NewSlice(lo, min(lo+step, n))
		}
		data, err := arrowipc.Encode(part)
		if step < n {
			part.Release()
		}
		if err != nil {
			return err
		}
		if err := b.stream.Send(&agentpb.ExecuteResponse{Msg: &agentpb.ExecuteResponse_Batch{Batch: &agentpb.Batch{
			BridgeId: int32(id), ArrowIpc: data, NumRows: part.NumRows()}}}); err != nil {
			return fmt.Errorf("sending bridge #%d: %w", id, err)
		}
		b.rows += part.NumRows()
		b.bytes += int64(len(data))
	}
	return nil
}

func (b *streamBridge) CloseSend(id int) error {
	if err := b.stream.Send(&agentpb.ExecuteResponse{Msg: &agentpb.ExecuteResponse_BridgeDone{BridgeDone: int32(id)}}); err != nil {
		return fmt.Errorf("ending bridge #%d: %w", id, err)
	}
	return nil
}
