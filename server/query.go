package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Config configures the public services.
type Config struct {
	// Backend runs the plans.
	Backend Backend
	// Library resolves scripts by name; scripts.NewLibrary() when nil.
	Library *scripts.Library
	// Log receives one line per query; slog.Default() when nil.
	Log *slog.Logger
	// Now, when set, gives queries their now (e.g. the end of a capture
	// being served); time.Now() otherwise.
	Now func() time.Time
}

// Server implements the public services over a Backend. Register it
// on a gRPC server with Register; serve HTTP with Handler.
type Server struct {
	cfg Config
}

// New returns the public services of a backend.
func New(cfg Config) *Server {
	if cfg.Library == nil {
		cfg.Library = scripts.NewLibrary()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Server{cfg: cfg}
}

// request is one script to run, whichever service it came from.
type request struct {
	script *scripts.Script
	args   map[string]string
	funcs  []lang.FuncCall
	opts   ExecOptions
}

// CompileError is a script's mistake found before it ran: a compile
// error at a position (Line 0 when there is none), an unknown script,
// a bad argument.
type CompileError struct {
	Line, Col int
	Msg       string
}

func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
	}
	return e.Msg
}

func compileError(err error) *CompileError {
	var le *lang.Error
	if errors.As(err, &le) {
		return &CompileError{Line: le.Line, Col: le.Col, Msg: le.Msg}
	}
	return &CompileError{Msg: err.Error()}
}

// stats tells how a query ran.
type stats struct {
	compile, exec time.Duration
	rows, bytes   int64
	info          ExecInfo
	warnings      []string
}

// run compiles req against the backend's catalog and executes it. A
// script's mistake comes back as a *CompileError before anything was
// written to out.
func (s *Server) run(ctx context.Context, req request, out exec.Output) (stats, error) {
	var st stats
	start := time.Now()
	cat, warns, err := s.cfg.Backend.Catalog(ctx)
	if err != nil {
		return st, err
	}
	st.warnings = warns
	now := start
	if s.cfg.Now != nil {
		now = s.cfg.Now()
	}
	p, err := engine.Compile(engine.Query{Script: req.script, Args: req.args, Funcs: req.funcs, Now: now}, cat)
	if err != nil {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		return st, compileError(err)
	}
	compiled := time.Now()
	st.compile = compiled.Sub(start)
	c := &countingOutput{Output: out}
	st.info, err = s.cfg.Backend.Execute(ctx, p, c, req.opts)
	st.exec = time.Since(compiled)
	st.rows, st.bytes = c.rows, c.bytes
	if len(st.info.Warnings) > 0 {
		// The catalog's warnings reappear in the backend's.
		st.warnings = st.info.Warnings
	}
	s.cfg.Log.Info("query", "id", req.opts.QueryID, "script", req.script.Name, "compile", st.compile, "exec", st.exec,
		"rows", st.rows, "moved_bytes", st.info.BytesMoved, "warnings", len(st.warnings), "err", err)
	return st, err
}

// countingOutput counts the rows and bytes of a query's output.
type countingOutput struct {
	exec.Output
	rows, bytes int64
}

func (c *countingOutput) Batch(name string, rec arrow.Record) error {
	c.rows += rec.NumRows()
	c.bytes += table.RecordBytes(rec)
	return c.Output.Batch(name, rec)
}

// newQueryID returns a random UUID (version 4).
func newQueryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// scriptOf makes a script of PxL source sent by a client.
func scriptOf(name, pxl string) *scripts.Script {
	if name == "" {
		name = "script"
	}
	return &scripts.Script{Name: name, Path: name + ".pxl", PXL: []byte(pxl), Source: "request"}
}

// relationOK reports whether a relation can be sent (every type known).
func relationOK(rel types.Relation) error {
	for _, c := range rel {
		if c.Type <= types.Unknown || c.Type > types.Time64NS {
			return fmt.Errorf("column %s has no wire type (%v)", c.Name, c.Type)
		}
	}
	return nil
}
