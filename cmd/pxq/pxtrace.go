package main

import (
	"context"
	"io"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/sources/pxtrace"
)

// The engine runs the dynamic tracepoints of scripts (pxtrace, through
// bpftrace) into its store; they stop with the command's sources. `pxq
// run --collect` flushes its sources before the script runs, so this
// stops what runs then and leaves the engine able to deploy the
// script's own (which runScript stops when it is done).
func init() {
	moreSources = append(moreSources, func(_ context.Context, eng *engine.Engine) (io.Closer, error) {
		return stopTracepoints{eng.Tracepoints()}, nil
	})
}

type stopTracepoints struct{ m *pxtrace.Manager }

func (s stopTracepoints) Close() error {
	s.m.StopAll()
	return nil
}
