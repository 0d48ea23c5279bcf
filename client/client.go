// Package client is the Go client of a pxq server's public API (`pxq
// serve` or `pxq broker`): run scripts and get their tables as Arrow
// records, list the script library and the tables. It speaks pxq's own
// PxqService; Pixie's client libraries speak the VizierService beside it.
//
//	c, err := client.Dial("localhost:50051")
//	if err != nil { … }
//	defer c.Close()
//	res, err := c.Run(ctx, "px/http_request_stats", map[string]string{"start_time": "-5m"})
//	for _, t := range res.Tables { format.Text(os.Stdout, t, format.Options{}) }
package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v15/arrow"
	"google.golang.org/grpc"

	"github.com/pxq-dev/pxq/api/arrowipc"
	"github.com/pxq-dev/pxq/api/pxqpb"
	"github.com/pxq-dev/pxq/api/relation"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/server/auth"
	"github.com/pxq-dev/pxq/types"
)

// Client is a connection to a pxq server. It is safe for concurrent use.
type Client struct {
	conn *grpc.ClientConn
	api  pxqpb.PxqServiceClient
}

// Option configures Dial.
type Option func(*auth.ClientConfig)

// WithToken sends token with every call ("authorization: Bearer …").
func WithToken(token string) Option { return func(c *auth.ClientConfig) { c.Token = token } }

// WithSecurity sets TLS and token settings at once.
func WithSecurity(cfg auth.ClientConfig) Option { return func(c *auth.ClientConfig) { *c = cfg } }

// Dial connects to a pxq server at addr (host:port). Without options the
// connection is plaintext, as a server without TLS (on loopback) expects.
// It does not wait for the server: the first call does.
func Dial(addr string, opts ...Option) (*Client, error) {
	var cfg auth.ClientConfig
	for _, o := range opts {
		o(&cfg)
	}
	dial, err := cfg.DialOptions()
	if err != nil {
		return nil, err
	}
	dial = append(dial, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	return &Client{conn: conn, api: pxqpb.NewPxqServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Query is a script to run: a library script of the server by name, or
// PxL source, with arguments (the vis spec's variables) or function
// calls.
type Query struct {
	// Script names a script of the server's library (px/http_data).
	Script string
	// PxL is script source, used when Script is empty.
	PxL string
	// Args are the values of the vis spec's variables.
	Args map[string]string
	// Funcs are functions to call instead of the vis spec's.
	Funcs []Func
	// AllOrNothing fails the query when an agent does not answer.
	AllOrNothing bool
	// MaxRows caps each table (0: the server's 10,000; below 0: none).
	MaxRows int64
}

// Func is a call of a script function with string arguments; its tables
// are named Output (Output[0], … for a list of frames).
type Func struct {
	Name   string
	Args   map[string]string
	Output string
}

// Stats tells how a query ran.
type Stats struct {
	QueryID               string
	CompileTimeNS, ExecNS int64
	Rows, Bytes           int64
	BytesMovedFromAgents  int64
	Warnings              []string
}

// Result is a query's tables.
type Result struct {
	Tables []*format.Table
	Stats
}

// CompileError is a script's mistake, reported by the server before the
// script ran: pxq's one compile-error type (File is empty: the wire
// carries no file name; Line is 0 when the error has no position).
type CompileError = lang.Error

// Handler receives a query's tables as they stream: for each table
// Table, then Batch for each record, then Done. engine.Collector and
// exec.Output implementations fit.
type Handler interface {
	Table(name string, rel types.Relation) error
	Batch(name string, rec arrow.Record) error
	Done(name string, truncated bool) error
}

// Run runs a library script of the server by name.
func (c *Client) Run(ctx context.Context, script string, args map[string]string) (*Result, error) {
	return c.Execute(ctx, Query{Script: script, Args: args})
}

// RunScript runs a script loaded here (a user's file or folder): its
// PxL is sent, with the calls of its vis spec for args.
func (c *Client) RunScript(ctx context.Context, s *scripts.Script, args map[string]string) (*Result, error) {
	q := Query{PxL: string(s.PXL)}
	if s.Vis != nil && (len(s.Vis.GlobalFuncs) > 0 || len(s.Vis.Widgets) > 0) {
		calls, err := s.Vis.Calls(args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		for _, cl := range calls {
			q.Funcs = append(q.Funcs, Func{Name: cl.Func, Args: cl.Args, Output: cl.Output})
		}
	} else if len(args) > 0 {
		return nil, fmt.Errorf("%s: arguments given, but the script has no vis spec with variables", s.Name)
	}
	return c.Execute(ctx, q)
}

// Execute runs a query and collects its tables.
func (c *Client) Execute(ctx context.Context, q Query) (*Result, error) {
	col := &collector{byName: map[string]*format.Table{}}
	st, err := c.Stream(ctx, q, col)
	if err != nil {
		return nil, err
	}
	return &Result{Tables: col.tables, Stats: st}, nil
}

// Stream runs a query and hands its tables to h as they arrive. A
// script's mistake is a *CompileError.
func (c *Client) Stream(ctx context.Context, q Query, h Handler) (Stats, error) {
	req := &pxqpb.ExecuteRequest{ScriptName: q.Script, Pxl: q.PxL, Args: q.Args, AllOrNothing: q.AllOrNothing, MaxRows: q.MaxRows}
	for _, f := range q.Funcs {
		req.Funcs = append(req.Funcs, &pxqpb.FuncCall{Func: f.Name, Args: f.Args, Output: f.Output})
	}
	var st Stats
	s, err := c.api.Execute(ctx, req)
	if err != nil {
		return st, fmt.Errorf("client: %w", err)
	}
	rels := map[string]types.Relation{}
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return st, errors.New("client: the stream ended without stats")
		}
		if err != nil {
			return st, fmt.Errorf("client: %w", err)
		}
		st.QueryID = resp.GetQueryId()
		switch m := resp.GetMsg().(type) {
		case *pxqpb.ExecuteResponse_CompileError:
			return st, &CompileError{Line: int(m.CompileError.GetLine()), Col: int(m.CompileError.GetColumn()), Msg: m.CompileError.GetMessage()}
		case *pxqpb.ExecuteResponse_Table:
			rel, err := relation.FromPB(m.Table.GetColumns())
			if err != nil {
				return st, fmt.Errorf("client: table %s: %w", m.Table.GetName(), err)
			}
			rels[m.Table.GetName()] = rel
			if err := h.Table(m.Table.GetName(), rel); err != nil {
				return st, err
			}
		case *pxqpb.ExecuteResponse_Batch:
			rel, ok := rels[m.Batch.GetTable()]
			if !ok {
				return st, fmt.Errorf("client: batch for unannounced table %q", m.Batch.GetTable())
			}
			rec, err := arrowipc.Decode(m.Batch.GetArrowIpc())
			if err != nil {
				return st, fmt.Errorf("client: table %s: %w", m.Batch.GetTable(), err)
			}
			// Put the relation's semantic types back on the schema.
			rec = withSchema(rec, rel)
			if err := h.Batch(m.Batch.GetTable(), rec); err != nil {
				return st, err
			}
		case *pxqpb.ExecuteResponse_End:
			if err := h.Done(m.End.GetName(), m.End.GetTruncated()); err != nil {
				return st, err
			}
		case *pxqpb.ExecuteResponse_Stats:
			st.CompileTimeNS, st.ExecNS = m.Stats.GetCompileTimeNs(), m.Stats.GetExecTimeNs()
			st.Rows, st.Bytes, st.BytesMovedFromAgents = m.Stats.GetRows(), m.Stats.GetBytes(), m.Stats.GetBytesMoved()
			st.Warnings = m.Stats.GetWarnings()
			return st, nil
		}
	}
}

// Script is a script of the server's library.
type Script struct {
	Name, Short, Long, PxL, VisJSON string
}

// Scripts lists the server's script library.
func (c *Client) Scripts(ctx context.Context) ([]Script, error) {
	resp, err := c.api.ListScripts(ctx, &pxqpb.ListScriptsRequest{})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var out []Script
	for _, s := range resp.GetScripts() {
		out = append(out, Script{Name: s.GetName(), Short: s.GetShort(), Long: s.GetLong(), PxL: s.GetPxl(), VisJSON: s.GetVisJson()})
	}
	return out, nil
}

// Table is a table scripts can scan.
type Table struct {
	Name, Desc string
	Relation   types.Relation
}

// Tables lists the tables scripts can scan (on a broker: the union over
// its agents), with warnings naming agents that did not answer.
func (c *Client) Tables(ctx context.Context) ([]Table, []string, error) {
	resp, err := c.api.ListTables(ctx, &pxqpb.ListTablesRequest{})
	if err != nil {
		return nil, nil, fmt.Errorf("client: %w", err)
	}
	var out []Table
	for _, t := range resp.GetTables() {
		rel, err := relation.FromPB(t.GetColumns())
		if err != nil {
			return nil, nil, fmt.Errorf("client: table %s: %w", t.GetName(), err)
		}
		out = append(out, Table{Name: t.GetName(), Desc: t.GetDesc(), Relation: rel})
	}
	return out, resp.GetWarnings(), nil
}

type collector struct {
	tables []*format.Table
	byName map[string]*format.Table
}

func (c *collector) Table(name string, rel types.Relation) error {
	t := &format.Table{Name: name, Relation: rel}
	c.byName[name] = t
	c.tables = append(c.tables, t)
	return nil
}

func (c *collector) Batch(name string, rec arrow.Record) error {
	c.byName[name].Records = append(c.byName[name].Records, rec)
	return nil
}

func (c *collector) Done(name string, truncated bool) error {
	c.byName[name].Truncated = truncated
	return nil
}
