package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

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
	others  []io.Closer
	closed  bool
}

// moreSources start the sources beyond the tracer and the sampler (the
// profiler, the JVM reader, …), each from its own file's init. A source
// that cannot run returns an error, which is said and does not stop the
// others; Close flushes what it holds into the store.
var moreSources []func(ctx context.Context, eng *engine.Engine) (io.Closer, error)

// startSources starts the eBPF tracer and the /proc sampler into the
// engine's store. Without BPF it says what is missing and keeps the /proc
// sources; it fails only when no source can run.
func startSources(ctx context.Context, stderr io.Writer, eng *engine.Engine, o sourceOptions) (*localSources, error) {
	s := &localSources{}
	cfg := ebpf.Config{TraceSelf: o.TraceSelf, ASID: eng.ASID(), AllClientSides: o.AllClientSides || allClientSides}
	switch m := eng.Metadata().(type) {
	case *k8s.Metadata:
		// Pods and services of the cluster are traced by the agents of
		// their nodes: a request to one is counted on its server's side.
		cfg.RemoteTraced = func(a netip.Addr) bool {
			st := m.Store()
			if st == nil {
				return false // host mode until the informers sync
			}
			ip := a.String()
			return st.PodByIP(ip, 0) != nil || st.ServiceByIP(ip) != nil
		}
		cfg.OnConn = recordProcesses(ctx, m.Record)
	case interface{ Processes() *metadata.Processes }:
		cfg.OnConn = recordProcesses(ctx, func(u types.UInt128Value) { m.Processes().Lookup(u) })
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
	for _, start := range moreSources {
		c, err := start(ctx, eng)
		if err != nil {
			fmt.Fprintf(stderr, "pxq: %v\n", err)
			continue
		}
		s.others = append(s.others, c)
	}
	if s.tracer == nil && s.sampler == nil {
		return nil, fmt.Errorf("no data source could start")
	}
	// Live data is kept by age (24 h) and bytes (the engine's bound).
	go eng.Store().RunRetention(10*time.Second, ctx.Done())
	applyMemoryLimit(stderr, eng.Store().MaxBytes())
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
	for _, c := range s.others {
		c.Close()
	}
}

// Close stops the sources.
func (s *localSources) Close() { s.Flush() }

// kubeconfigFlag registers --kubeconfig on c, every command that traces
// this host or serves (demo included).
func kubeconfigFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "kubeconfig", "", "kubeconfig of the cluster that names this node's pods and services "+
		"(default as kubectl: $KUBECONFIG, ~/.kube/config, then the in-cluster service account; none: host mode)")
}

// syncWait is how long a command that traces for a set time (run
// --collect, capture, live, demo) waits for Kubernetes metadata before it
// starts in host mode, so that its rows are named by the cluster from the
// start. It stops waiting at the API server's first failure.
const syncWait = 10 * time.Second

// openMetadata opens the metadata of this machine (k8s.Open: Kubernetes
// when a cluster is configured as kubectl finds it, else host mode),
// which says on log which it uses, and waits up to wait for Kubernetes
// mode (waitMetadata). node names this node (default: the hostname).
// Every command that traces or serves calls it; Close stops the watch.
func openMetadata(ctx context.Context, log *slog.Logger, kubeconfig, node string, wait time.Duration) (*k8s.Metadata, error) {
	m, err := k8s.Open(k8s.Options{Kubeconfig: kubeconfig, Store: k8s.StoreConfig{NodeName: node}, Log: log})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	waitMetadata(ctx, log, m, wait)
	return m, nil
}

// waitMetadata waits up to wait (syncWait for the commands that trace
// for a set time, 0 for servers) for m's Kubernetes mode, when a cluster
// is configured, and says so if it gives up.
func waitMetadata(ctx context.Context, log *slog.Logger, m *k8s.Metadata, wait time.Duration) {
	if wait <= 0 || m.Server() == "" {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := m.Wait(wctx); errors.Is(err, context.DeadlineExceeded) {
		// The API server's failures are logged as they happen; a
		// slow server is not.
		log.Warn("metadata: starting in host mode; switching when the Kubernetes API server answers", "server", m.Server(), "waited", wait)
	}
}

// lineLog is the logger of the commands whose messages are plain lines
// on stderr (run, capture, live, ui, demo): "pxq: message key=value".
func lineLog(w io.Writer) *slog.Logger { return slog.New(&lineHandler{w: w, mu: new(sync.Mutex)}) }

// lineHandler is the slog.Handler of lineLog.
type lineHandler struct {
	w     io.Writer
	mu    *sync.Mutex
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("pxq: ")
	if r.Level >= slog.LevelWarn {
		b.WriteString("warning: ")
	}
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		v := a.Value.String()
		if v == "" || strings.ContainsAny(v, " \t\"=") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, v)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{w: h.w, mu: h.mu, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

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
// with lookup (reading /proc while they still run) on a goroutine of its
// own, so that a process that made one request and exited still has a
// cmdline.
func recordProcesses(ctx context.Context, lookup func(types.UInt128Value)) func(types.UInt128Value) {
	ch := make(chan types.UInt128Value, 1024)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case u := <-ch:
				lookup(u)
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
