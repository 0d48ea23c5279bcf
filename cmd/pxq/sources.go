package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/k8s"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/types"
)

// allClientSides is --all-client-sides, on every command that traces.
var allClientSides bool

func init() {
	rootCmd.PersistentFlags().BoolVar(&allClientSides, "all-client-sides", false,
		"record the client side of a request also when pxq traces its server (two rows per request; see docs/tables.md)")
}

// sourceOptions configure the host's data sources.
type sourceOptions struct {
	// TraceSelf makes the eBPF tracer see pxq's own traffic (the demo
	// needs it: its app runs inside pxq's process).
	TraceSelf bool
	// ProcPeriod is the /proc sampling period (10 s when zero).
	ProcPeriod time.Duration
	// AllClientSides keeps the client side of requests whose server is
	// traced too (ebpf.Config.AllClientSides).
	AllClientSides bool
}

// localSources are the sources running in this process.
type localSources struct {
	tracer  *ebpf.Tracer
	sampler *proc.Sampler
	closed  bool
}

// startSources starts the eBPF tracer and the /proc sampler into the
// engine's store. Without BPF it says what is missing and keeps the /proc
// sources; it fails only when no source can run.
func startSources(ctx context.Context, stderr io.Writer, eng *engine.Engine, o sourceOptions) (*localSources, error) {
	s := &localSources{}
	cfg := ebpf.Config{TraceSelf: o.TraceSelf, ASID: eng.ASID(), AllClientSides: o.AllClientSides || allClientSides}
	if st, ok := eng.Metadata().(*k8s.Store); ok {
		// Pods and services of the cluster are traced by the agents of
		// their nodes: a request to one is counted on its server's side.
		cfg.RemoteTraced = func(a netip.Addr) bool {
			ip := a.String()
			return st.PodByIP(ip, 0) != nil || st.ServiceByIP(ip) != nil
		}
	}
	if h, ok := eng.Metadata().(interface{ Processes() *metadata.Processes }); ok {
		cfg.OnConn = recordProcesses(ctx, h.Processes())
	}
	tr, err := ebpf.New(cfg, eng.Store())
	if err != nil {
		fmt.Fprintf(stderr, "pxq: eBPF tracing is off: %v\n", err)
		if os.Geteuid() != 0 {
			fmt.Fprintln(stderr, "pxq: run as root (sudo pxq …) or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE to trace HTTP traffic")
		}
	} else {
		s.tracer = tr
		tr.Start(ctx)
	}
	period := o.ProcPeriod
	if period == 0 {
		period = 10 * time.Second
	}
	sm, err := proc.NewSampler(proc.Config{Period: period, ASID: eng.ASID()}, eng.Store())
	if err != nil {
		fmt.Fprintf(stderr, "pxq: /proc sampling is off: %v\n", err)
	} else {
		s.sampler = sm
		sm.Start(ctx)
	}
	if s.tracer == nil && s.sampler == nil {
		return nil, fmt.Errorf("no data source could start")
	}
	// Live data is kept by age (24 h) and bytes (the engine's bound).
	go eng.Store().RunRetention(10*time.Second, ctx.Done())
	return s, nil
}

// Tracing reports whether the eBPF tracer runs.
func (s *localSources) Tracing() bool { return s.tracer != nil }

// Flush stops the sources, writing everything they hold to the store (a
// last /proc sample included).
func (s *localSources) Flush() {
	if s.closed {
		return
	}
	s.closed = true
	if s.tracer != nil {
		s.tracer.Close()
	}
	if s.sampler != nil {
		s.sampler.Sample(time.Now())
		s.sampler.Close()
	}
}

// Close stops the sources.
func (s *localSources) Close() { s.Flush() }

// hostMetadata returns the host-mode metadata provider (processes from
// /proc, no pods), or no metadata when /proc cannot be read.
func hostMetadata(stderr io.Writer) metadata.Provider {
	h, err := metadata.NewHost()
	if err != nil {
		fmt.Fprintf(stderr, "pxq: process metadata is off: %v\n", err)
		return metadata.None{}
	}
	return h
}

// recordProcesses returns a non-blocking callback that looks processes up
// (reading /proc while they still run) on a goroutine of its own, so
// that a process that made one request and exited still has a cmdline.
func recordProcesses(ctx context.Context, procs *metadata.Processes) func(types.UInt128Value) {
	ch := make(chan types.UInt128Value, 1024)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case u := <-ch:
				procs.Lookup(u)
			}
		}
	}()
	return func(u types.UInt128Value) {
		select {
		case ch <- u:
		default: // busy: the process will be looked up at query time
		}
	}
}
