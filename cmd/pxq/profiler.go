package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/sources/profiler"
)

// profilerF are the continuous profiler's flags, on every command that
// traces.
var profilerF struct {
	hz     int
	period time.Duration
}

func init() {
	rootCmd.PersistentFlags().IntVar(&profilerF.hz, "profiler-hz", 100,
		"CPU samples per second per CPU of the continuous profiler (stack_traces.beta); 0 turns it off")
	rootCmd.PersistentFlags().DurationVar(&profilerF.period, "profiler-period", 30*time.Second,
		"how often the continuous profiler writes its counts to stack_traces.beta")
	moreSources = append(moreSources, startProfiler)
}

// startProfiler starts the continuous profiler into the engine's store.
func startProfiler(ctx context.Context, eng *engine.Engine) (io.Closer, error) {
	if profilerF.hz <= 0 {
		return nopCloser{}, nil
	}
	src, err := profiler.NewSource(profiler.SourceConfig{
		Config: profiler.Config{ASID: eng.ASID(), Frequency: profilerF.hz},
		Period: profilerF.period,
	}, eng.Store())
	if err != nil {
		return nil, fmt.Errorf("CPU profiling is off: %w", err)
	}
	src.Start(ctx)
	return src, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
