package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/arrowipc"
	"github.com/pxq-dev/pxq/api/pxqpb"
	"github.com/pxq-dev/pxq/api/relation"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/types"
)

// pxqService implements pxqpb.PxqServiceServer.
type pxqService struct {
	pxqpb.UnimplementedPxqServiceServer
	s *Server
}

func registerPxq(g *grpc.Server, s *Server) {
	pxqpb.RegisterPxqServiceServer(g, &pxqService{s: s})
}

// ListScripts returns the server's script library.
func (p *pxqService) ListScripts(context.Context, *pxqpb.ListScriptsRequest) (*pxqpb.ListScriptsResponse, error) {
	all, err := p.s.cfg.Library.List()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &pxqpb.ListScriptsResponse{}
	for _, sc := range all {
		resp.Scripts = append(resp.Scripts, &pxqpb.Script{Name: sc.Name, Short: sc.Short, Long: sc.Long, Pxl: string(sc.PXL), VisJson: string(sc.VisRaw)})
	}
	return resp, nil
}

// ListTables returns the tables scripts can scan.
func (p *pxqService) ListTables(ctx context.Context, _ *pxqpb.ListTablesRequest) (*pxqpb.ListTablesResponse, error) {
	cat, warns, err := p.s.cfg.Runner.Backend.Tables(ctx)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	resp := &pxqpb.ListTablesResponse{Warnings: warns}
	for _, name := range cat.Tables() {
		rel, _ := cat.Relation(name)
		resp.Tables = append(resp.Tables, &pxqpb.Table{Name: name, Desc: TableDesc(name), Columns: relation.ToPB(rel)})
	}
	return resp, nil
}

// Execute runs a script and streams its tables as Arrow IPC batches. A
// script's mistake comes back in-stream as a compile_error.
func (p *pxqService) Execute(req *pxqpb.ExecuteRequest, stream pxqpb.PxqService_ExecuteServer) error {
	ctx := stream.Context()
	qid := query.NewID()
	r, err := p.s.resolve(req)
	if err == nil {
		r.ID = qid
		var res query.Result
		res, err = p.s.cfg.Runner.Run(ctx, r, &arrowOutput{stream: stream, qid: qid})
		if err == nil {
			return stream.Send(&pxqpb.ExecuteResponse{QueryId: qid, Msg: &pxqpb.ExecuteResponse_Stats{Stats: &pxqpb.Stats{
				CompileTimeNs: res.Compile.Nanoseconds(), ExecTimeNs: res.Exec.Nanoseconds(), Rows: res.Rows, Bytes: res.Bytes,
				Warnings: res.Warnings, BytesMoved: res.BytesMoved}}})
		}
	}
	var le *lang.Error
	if errors.As(err, &le) {
		return stream.Send(&pxqpb.ExecuteResponse{QueryId: qid, Msg: &pxqpb.ExecuteResponse_CompileError{CompileError: &pxqpb.CompileError{
			Line: uint64(max(le.Line, 0)), Column: uint64(max(le.Col, 0)), Message: le.Msg}}})
	}
	return toStatus(ctx, err)
}

// resolve turns a PxqService request into a script to run: a library
// script by name, or PxL source. Its mistakes are *lang.Error.
func (s *Server) resolve(req *pxqpb.ExecuteRequest) (query.Request, error) {
	r := query.Request{Args: req.GetArgs(), AllOrNothing: req.GetAllOrNothing(), MaxRows: req.GetMaxRows()}
	switch {
	case req.GetScriptName() != "" && req.GetPxl() != "":
		return r, query.Mistake("", "give a script name or PxL source, not both")
	case req.GetScriptName() != "":
		sc, err := s.cfg.Library.Get(req.GetScriptName())
		if err != nil {
			return r, query.Mistake("", "%v", err)
		}
		r.Script = sc
	case req.GetPxl() != "":
		r.Script = scriptOf("script", req.GetPxl())
	default:
		return r, query.Mistake("", "no script: give a script name or PxL source")
	}
	for _, f := range req.GetFuncs() {
		c := lang.FuncCall{Func: f.GetFunc(), Args: f.GetArgs(), Output: f.GetOutput()}
		if c.Output == "" {
			c.Output = c.Func
		}
		r.Funcs = append(r.Funcs, c)
	}
	return r, nil
}

// arrowOutput sends an execution's tables on a PxqService stream.
type arrowOutput struct {
	stream pxqpb.PxqService_ExecuteServer
	qid    string
}

func (o *arrowOutput) Table(name string, rel types.Relation) error {
	return o.stream.Send(&pxqpb.ExecuteResponse{QueryId: o.qid, Msg: &pxqpb.ExecuteResponse_Table{Table: &pxqpb.TableStart{Name: name, Columns: relation.ToPB(rel)}}})
}

func (o *arrowOutput) Batch(name string, rec arrow.Record) error {
	n := rec.NumRows()
	step := n
	if size := query.RecordBytes(rec); size > maxBatchBytes {
		step = max(1, n*maxBatchBytes/size)
	}
	for lo := int64(0); lo < n; lo += step {
		part := rec
		if step < n {
			part = rec.NewSlice(lo, min(lo+step, n))
		}
		data, err := arrowipc.Encode(part)
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		if err := o.stream.Send(&pxqpb.ExecuteResponse{QueryId: o.qid, Msg: &pxqpb.ExecuteResponse_Batch{Batch: &pxqpb.Batch{
			Table: name, ArrowIpc: data, NumRows: part.NumRows()}}}); err != nil {
			return err
		}
	}
	return nil
}

func (o *arrowOutput) Done(name string, truncated bool) error {
	return o.stream.Send(&pxqpb.ExecuteResponse{QueryId: o.qid, Msg: &pxqpb.ExecuteResponse_End{End: &pxqpb.TableEnd{Name: name, Truncated: truncated}}})
}
