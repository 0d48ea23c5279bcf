package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

// Config configures the public services.
type Config struct {
	// Runner runs the queries: its backend (the embedded engine of
	// `pxq serve`, or a broker), limits, gate and clock.
	Runner *query.Runner
	// Library resolves scripts by name; scripts.NewLibrary() when nil.
	Library *scripts.Library
}

// Server implements the public services over a query.Runner. Register
// it on a gRPC server with Register.
type Server struct {
	cfg Config
}

// New returns the public services of a runner.
func New(cfg Config) *Server {
	if cfg.Library == nil {
		cfg.Library = scripts.NewLibrary()
	}
	return &Server{cfg: cfg}
}

// toStatus turns a query's failure into a gRPC status.
func toStatus(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, query.ErrShutdown):
		return status.Error(codes.Unavailable, err.Error())
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, query.ErrBusy), errors.Is(err, exec.ErrMemoryLimit):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, query.ErrNoAgents), errors.Is(err, query.ErrAgentMissing):
		return status.Error(codes.Unavailable, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// TableDesc returns the description of a table pxq's sources fill, or "".
func TableDesc(name string) string { return tables.All[name].Desc }

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
