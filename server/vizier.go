package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/vizierpb"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/export/otel"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/types"
)

// Request metadata keys pxq reads besides Pixie's.
const (
	// MDAllOrNothing set to "true" fails a query that an agent did not
	// answer, instead of returning partial results with warnings.
	MDAllOrNothing = "pxq-all-or-nothing"
	// MDWarning is the trailer key of each warning of a query.
	MDWarning = "pxq-warning"
)

// maxBatchBytes bounds the column bytes of one RowBatchData; gRPC
// clients accept 4 MiB messages by default.
const maxBatchBytes = 1 << 20

// HealthInterval is how often HealthCheck repeats its status.
var HealthInterval = 5 * time.Second

// vizier implements vizierpb.VizierServiceServer.
type vizier struct {
	vizierpb.UnimplementedVizierServiceServer
	s *Server
}

// Register adds the public services (VizierService and PxqService) to
// a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	vizierpb.RegisterVizierServiceServer(g, &vizier{s: s})
	registerPxq(g, s)
}

// ExecuteScript runs a script and streams its tables as Pixie's clients
// expect: per table its meta_data, then its batches (the last with eos),
// then one execution_stats; every response carries the query id. A
// script's mistake comes back in-stream as status INVALID_ARGUMENT with
// the compiler error's line, column and message.
func (v *vizier) ExecuteScript(req *vizierpb.ExecuteScriptRequest, stream vizierpb.VizierService_ExecuteScriptServer) error {
	if req.GetQueryStr() == "" && req.GetQueryId() != "" {
		// Pixie's Go client resends the request this way after a
		// RST_STREAM to resume the query.
		return status.Errorf(codes.FailedPrecondition, "pxq cannot resume query %s: results are not kept after a stream breaks; run the script again", req.GetQueryId())
	}
	ctx := stream.Context()
	qid := query.NewID()
	r := query.Request{Script: scriptOf(req.GetQueryName(), req.GetQueryStr()), ID: qid, Mutation: req.GetMutation()}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get(MDAllOrNothing) {
		r.AllOrNothing = r.AllOrNothing || strings.EqualFold(v, "true")
	}
	for _, f := range req.GetExecFuncs() {
		c := lang.FuncCall{Func: f.GetFuncName(), Output: f.GetOutputTablePrefix(), Args: map[string]string{}}
		if c.Output == "" {
			c.Output = c.Func
		}
		for _, a := range f.GetArgValues() {
			c.Args[a.GetName()] = a.GetValue()
		}
		r.Funcs = append(r.Funcs, c)
	}
	if c := req.GetConfigs().GetOtelEndpointConfig(); c.GetUrl() != "" {
		r.OTelEndpoint = &plan.OTelEndpoint{URL: c.GetUrl(), Headers: c.GetHeaders(), Insecure: c.GetInsecure(),
			Timeout: time.Duration(c.GetTimeout()) * time.Second}
	}
	if c := req.GetConfigs().GetPluginConfig(); c != nil {
		if c.GetStartTimeNs() > 0 {
			r.PluginStart = time.Unix(0, c.GetStartTimeNs())
		}
		if c.GetEndTimeNs() > 0 {
			r.PluginEnd = time.Unix(0, c.GetEndTimeNs())
		}
	}
	out := &vizierOutput{stream: stream, qid: qid}
	res, err := v.s.cfg.Runner.Run(ctx, r, out)
	for _, w := range res.Warnings {
		stream.SetTrailer(metadata.Pairs(MDWarning, w))
	}
	var le *lang.Error
	switch {
	case res.Pending:
		// Pixie's clients ask again while a mutation's tracepoints are
		// being deployed.
		return stream.Send(&vizierpb.ExecuteScriptResponse{QueryId: qid, MutationInfo: mutationInfo(res,
			&vizierpb.Status{Code: int32(codes.Unavailable), Message: "probe installation in progress"})})
	case errors.As(err, &le):
		resp := compileErrorResponse(qid, le)
		if len(res.Tracepoints) > 0 {
			resp.MutationInfo = mutationInfo(res, resp.Status)
		}
		return stream.Send(resp)
	case errors.Is(err, exec.ErrMemoryLimit) && !out.started:
		return stream.Send(compileErrorResponse(qid, &lang.Error{Msg: err.Error()}))
	case err != nil:
		return toStatus(ctx, err)
	case res.Truncated:
		// Pixie's clients have no warnings: a cut result ends in an
		// error they show, after the rows that were sent.
		return status.Error(codes.ResourceExhausted, strings.Join(res.Warnings, "; "))
	}
	return stream.Send(&vizierpb.ExecuteScriptResponse{QueryId: qid, Result: &vizierpb.ExecuteScriptResponse_Data{Data: &vizierpb.QueryData{
		ExecutionStats: &vizierpb.QueryExecutionStats{
			Timing:           &vizierpb.QueryTimingInfo{ExecutionTimeNs: res.Exec.Nanoseconds(), CompilationTimeNs: res.Compile.Nanoseconds()},
			BytesProcessed:   res.Bytes,
			RecordsProcessed: res.Rows,
		}}}})
}

// mutationInfo describes the states of a query's tracepoints.
func mutationInfo(res query.Result, st *vizierpb.Status) *vizierpb.MutationInfo {
	mi := &vizierpb.MutationInfo{Status: st}
	for _, t := range res.Tracepoints {
		mi.States = append(mi.States, &vizierpb.MutationInfo_MutationState{Id: uuidOf(t.ID), Name: t.Name, State: vizierpb.LifeCycleState(t.State)})
	}
	return mi
}

// uuidOf renders a 128-bit id as a UUID.
func uuidOf(u types.UInt128Value) string {
	h, l := u.High, u.Low
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", h>>32, h>>16&0xffff, h&0xffff, l>>48, l&0xffffffffffff)
}

// compileErrorResponse is the in-stream answer to a script's mistake: a
// status INVALID_ARGUMENT with the compiler error's position (0 when it
// has none) and message.
func compileErrorResponse(qid string, le *lang.Error) *vizierpb.ExecuteScriptResponse {
	return &vizierpb.ExecuteScriptResponse{QueryId: qid, Status: &vizierpb.Status{
		Code:    int32(codes.InvalidArgument),
		Message: le.Error(),
		ErrorDetails: []*vizierpb.ErrorDetails{{Error: &vizierpb.ErrorDetails_CompilerError{CompilerError: &vizierpb.CompilerError{
			Line: uint64(max(le.Line, 0)), Column: uint64(max(le.Col, 0)), Message: le.Msg}}}},
	}}
}

// HealthCheck streams the server's health every HealthInterval until the
// client cancels: OK when the backend can list its tables (on a broker:
// some agent answers), else UNAVAILABLE with the reason.
func (v *vizier) HealthCheck(_ *vizierpb.HealthCheckRequest, stream vizierpb.VizierService_HealthCheckServer) error {
	ctx := stream.Context()
	t := time.NewTicker(HealthInterval)
	defer t.Stop()
	for {
		st := &vizierpb.Status{}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if _, _, err := v.s.cfg.Runner.Backend.Tables(cctx); err != nil {
			st = &vizierpb.Status{Code: int32(codes.Unavailable), Message: err.Error()}
		}
		cancel()
		if err := stream.Send(&vizierpb.HealthCheckResponse{Status: st}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// GenerateOTelScript turns a script that displays tables into one that
// exports them (otel.Generate), compiled against the backend's tables. A
// script it cannot turn comes back as a status INVALID_ARGUMENT in the
// response, with the compiler error's position when there is one.
func (v *vizier) GenerateOTelScript(ctx context.Context, req *vizierpb.GenerateOTelScriptRequest) (*vizierpb.GenerateOTelScriptResponse, error) {
	cat, _, err := v.s.cfg.Runner.Backend.Tables(ctx)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	now := time.Now()
	if v.s.cfg.Runner.Now != nil {
		now = v.s.cfg.Runner.Now()
	}
	text, err := otel.Generate(scriptOf("script", req.GetPxlScript()), cat, now)
	if err != nil {
		st := &vizierpb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
		var le *lang.Error
		if errors.As(err, &le) {
			st = compileErrorResponse("", le).Status
		}
		return &vizierpb.GenerateOTelScriptResponse{Status: st}, nil
	}
	return &vizierpb.GenerateOTelScriptResponse{Status: &vizierpb.Status{}, OtelScript: text}, nil
}

// vizierOutput sends an execution's tables on an ExecuteScript stream.
// It holds back each table's last batch so that it can carry eos.
type vizierOutput struct {
	stream  vizierpb.VizierService_ExecuteScriptServer
	qid     string
	rel     types.Relation
	held    *vizierpb.RowBatchData
	started bool
}

func (o *vizierOutput) send(r *vizierpb.ExecuteScriptResponse) error {
	r.QueryId = o.qid
	o.started = true
	return o.stream.Send(r)
}

func (o *vizierOutput) Table(name string, rel types.Relation) error {
	if err := relationOK(rel); err != nil {
		return fmt.Errorf("table %s: %w", name, err)
	}
	o.rel, o.held = rel, nil
	return o.send(&vizierpb.ExecuteScriptResponse{Result: &vizierpb.ExecuteScriptResponse_MetaData{MetaData: &vizierpb.QueryMetadata{
		Name: name, Id: name, Relation: RelationPB(rel)}}})
}

func (o *vizierOutput) Batch(name string, rec arrow.Record) error {
	n := rec.NumRows()
	step := n
	if size := query.RecordBytes(rec) + n*int64(4*len(o.rel)); size > maxBatchBytes {
		step = max(1, n*maxBatchBytes/size)
	}
	for lo := int64(0); lo < n; lo += step {
		hi := min(lo+step, n)
		b, err := RowBatch(o.rel, rec, lo, hi)
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		b.TableId = name
		if err := o.flush(); err != nil {
			return err
		}
		o.held = b
	}
	return nil
}

func (o *vizierOutput) flush() error {
	if o.held == nil {
		return nil
	}
	b := o.held
	o.held = nil
	return o.send(&vizierpb.ExecuteScriptResponse{Result: &vizierpb.ExecuteScriptResponse_Data{Data: &vizierpb.QueryData{Batch: b}}})
}

func (o *vizierOutput) Done(name string, _ bool) error {
	if o.held == nil {
		b, err := RowBatch(o.rel, nil, 0, 0)
		if err != nil {
			return err
		}
		b.TableId = name
		o.held = b
	}
	o.held.Eos, o.held.Eow = true, true
	return o.flush()
}

// RelationPB returns a relation as Pixie's Relation message.
func RelationPB(rel types.Relation) *vizierpb.Relation {
	r := &vizierpb.Relation{}
	for _, c := range rel {
		r.Columns = append(r.Columns, &vizierpb.Relation_ColumnInfo{ColumnName: c.Name, ColumnType: vizierpb.DataType(c.Type),
			ColumnDesc: c.Desc, ColumnSemanticType: vizierpb.SemanticType(c.Semantic)})
	}
	return r
}

// RowBatch converts rows [lo, hi) of rec, whose columns are rel, into a
// RowBatchData with one column per relation column. A nil rec gives an
// empty batch with empty columns of the right types.
func RowBatch(rel types.Relation, rec arrow.Record, lo, hi int64) (*vizierpb.RowBatchData, error) {
	b := &vizierpb.RowBatchData{NumRows: hi - lo}
	if rec != nil && int(rec.NumCols()) != len(rel) {
		return nil, fmt.Errorf("batch has %d columns, relation %d", rec.NumCols(), len(rel))
	}
	for i, c := range rel {
		var a arrow.Array
		if rec != nil {
			a = rec.Column(i)
		}
		col, err := column(c.Type, a, int(lo), int(hi))
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		b.Cols = append(b.Cols, col)
	}
	return b, nil
}

func column(t types.DataType, a arrow.Array, lo, hi int) (*vizierpb.Column, error) {
	n := hi - lo
	switch t {
	case types.Boolean:
		d := make([]bool, n)
		if a != nil {
			x, ok := a.(*array.Boolean)
			if !ok {
				return nil, typeErr(t, a)
			}
			for i := range d {
				d[i] = x.Value(lo + i)
			}
		}
		return &vizierpb.Column{ColData: &vizierpb.Column_BooleanData{BooleanData: &vizierpb.BooleanColumn{Data: d}}}, nil
	case types.Int64:
		d := make([]int64, n)
		if a != nil {
			x, ok := a.(*array.Int64)
			if !ok {
				return nil, typeErr(t, a)
			}
			copy(d, x.Int64Values()[lo:hi])
		}
		return &vizierpb.Column{ColData: &vizierpb.Column_Int64Data{Int64Data: &vizierpb.Int64Column{Data: d}}}, nil
	case types.Time64NS:
		d := make([]int64, n)
		if a != nil {
			x, ok := a.(*array.Timestamp)
			if !ok {
				return nil, typeErr(t, a)
			}
			for i, v := range x.TimestampValues()[lo:hi] {
				d[i] = int64(v)
			}
		}
		return &vizierpb.Column{ColData: &vizierpb.Column_Time64NsData{Time64NsData: &vizierpb.Time64NSColumn{Data: d}}}, nil
	case types.Float64:
		d := make([]float64, n)
		if a != nil {
			x, ok := a.(*array.Float64)
			if !ok {
				return nil, typeErr(t, a)
			}
			copy(d, x.Float64Values()[lo:hi])
		}
		return &vizierpb.Column{ColData: &vizierpb.Column_Float64Data{Float64Data: &vizierpb.Float64Column{Data: d}}}, nil
	case types.String:
		d := make([][]byte, n)
		if a != nil {
			x, ok := a.(*array.String)
			if !ok {
				return nil, typeErr(t, a)
			}
			for i := range d {
				d[i] = []byte(x.Value(lo + i))
			}
		}
		return &vizierpb.Column{ColData: &vizierpb.Column_StringData{StringData: &vizierpb.StringColumn{Data: d}}}, nil
	case types.UInt128:
		d := make([]*vizierpb.UInt128, n)
		if a != nil {
			x, ok := a.(*array.FixedSizeBinary)
			if !ok {
				return nil, typeErr(t, a)
			}
			for i := range d {
				u := types.GetUInt128(x.Value(lo + i))
				d[i] = &vizierpb.UInt128{High: u.High, Low: u.Low}
			}
		} else {
			for i := range d {
				d[i] = &vizierpb.UInt128{}
			}
		}
		return &vizierpb.Column{ColData: &vizierpb.Column_Uint128Data{Uint128Data: &vizierpb.UInt128Column{Data: d}}}, nil
	}
	return nil, fmt.Errorf("no wire type for %v", t)
}

func typeErr(t types.DataType, a arrow.Array) error {
	return fmt.Errorf("%v column holds Arrow %v", t, a.DataType())
}
