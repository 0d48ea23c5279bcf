package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/demo"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/ui"
)

// demoFlags are the flags of `pxq demo`.
type demoFlags struct {
	kubeconfig string
	duration   time.Duration
	rate       int
	rows       int
	offline    bool
	full       bool
	saveTo     string
	output     string
	maxWidth   int
	ui         string
}

var demoF demoFlags

var demoCmd = &cobra.Command{
	Use:   "demo",
	Short: "Run a demo shop, trace its HTTP traffic with eBPF, and show it with two scripts",
	Long: `pxq demo starts a small shop of five services on 127.0.0.1 (frontend,
catalog, checkout, payments, inventory, each a child process: ` + "`pxq demo-app NAME`" + `)
and a DNS server that names them, sends them a few seconds of requests (some
fail, some are slow), traces all of it with eBPF, then runs px/http_data
and px/http_request_stats over what was captured. Most hops are HTTP/1.1;
checkout charges payments over HTTPS (Go's crypto/tls, decrypted through
uprobes) and reserves stock at inventory over gRPC (see px/grpc_stats).
As root, each process runs in a cgroup of its own named like a systemd
service (pxq-demo.slice/NAME.service, removed at the end), which names its
pod.

Tracing needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE) and
tracefs. Without them pxq says what is missing and runs the same scripts
over a capture shipped inside pxq, recorded from a real demo run.`,
	Example: `  sudo pxq demo
  pxq demo --duration 10s --rate 50
  pxq demo --offline                  # the shipped capture, no tracing
  pxq demo --save-capture ./shop      # keep the data, then:
  pxq run px/slow_requests --capture ./shop`,
	Args: cobra.NoArgs,
	RunE: func(c *cobra.Command, _ []string) error {
		return runDemo(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), &demoF)
	},
}

var demoAppCmd = &cobra.Command{
	Use:    "demo-app NAME",
	Short:  "Run one part of the demo (used by pxq demo)",
	Hidden: true,
	Args:   cobra.ExactArgs(1),
	RunE: func(c *cobra.Command, args []string) error {
		ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer cancel()
		return demo.RunChild(ctx, args[0], os.Stdin, os.Stdout)
	},
}

func init() {
	f := demoCmd.Flags()
	f.DurationVar(&demoF.duration, "duration", 4*time.Second, "how long to send requests")
	f.IntVar(&demoF.rate, "rate", 40, "requests per second sent to the frontend")
	f.IntVar(&demoF.rows, "rows", 12, "rows of px/http_data to print")
	f.BoolVar(&demoF.offline, "offline", false, "do not trace: run the scripts over the capture shipped inside pxq")
	f.BoolVar(&demoF.full, "full", false, "print every column of px/http_data (headers and bodies too)")
	f.StringVar(&demoF.saveTo, "save-capture", "", "write what was traced to this folder (replay it with pxq run --capture)")
	f.StringVarP(&demoF.output, "output", "o", "table", "output format: table, json, csv or arrow")
	f.IntVar(&demoF.maxWidth, "max-width", 32, "widest a text cell gets before it is cut")
	f.StringVar(&demoF.ui, "ui", "", "then serve the web UI over the demo's data at this loopback address (e.g. 127.0.0.1:7474) until Ctrl-C")
	kubeconfigFlag(demoCmd, &demoF.kubeconfig)
	rootCmd.AddCommand(demoCmd, demoAppCmd)
}

// demoColumns are the columns of px/http_data that fit a terminal.
var demoColumns = []string{"time_", "source", "destination", "req_method", "req_path", "resp_status", "latency", "resp_body"}

// runDemo is `pxq demo`.
func runDemo(ctx context.Context, stdout, stderr io.Writer, f *demoFlags) error {
	switch f.output {
	case "table", "json", "csv", "arrow":
	default:
		return usagef("-o %q: want table, json, csv or arrow", f.output)
	}
	if f.duration <= 0 || f.duration > 5*time.Minute || f.rate <= 0 || f.rate > 1000 {
		return usagef("--duration must be in (0, 5m] and --rate in [1, 1000]")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt)
	defer cancel()
	// The demo's apps are processes of this host, named by host entities;
	// on a node, --kubeconfig (or $KUBECONFIG) names the cluster's pods too.
	meta, err := openMetadata(ctx, lineLog(stderr), f.kubeconfig, "", syncWait)
	if err != nil {
		return err
	}
	defer meta.Close()
	eng, err := engine.New(engine.Config{Meta: meta})
	if err != nil {
		return err
	}
	var now time.Time
	var cleanup func()
	if f.offline {
		fmt.Fprintln(stderr, "pxq demo: --offline: running the scripts over the capture shipped inside pxq")
		eng, now, err = replayShipped()
	} else {
		now, cleanup, err = traceDemo(ctx, stderr, eng, f)
		if errors.Is(err, errNoBPF) {
			if f.saveTo != "" {
				fmt.Fprintf(stderr, "pxq demo: nothing was traced, so nothing is saved to %s.\n", f.saveTo)
			}
			fmt.Fprintln(stderr, "pxq demo: showing a capture shipped inside pxq instead, recorded from a real `pxq demo` run.")
			eng, now, err = replayShipped()
		}
	}
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return err
	}
	lib := scripts.NewLibrary()
	for _, run := range []struct {
		name string
		args map[string]string
	}{
		{"px/http_data", map[string]string{"max_rows": strconv.Itoa(f.rows)}},
		{"px/http_request_stats", nil},
	} {
		s, err := lib.Get(run.name)
		if err != nil {
			return err
		}
		tables, err := eng.Collect(ctx, engine.Query{Script: s, Args: run.args, Now: now})
		if err != nil {
			return fmt.Errorf("running %s: %w", run.name, err)
		}
		if f.output == "table" {
			fmt.Fprintf(stdout, "\n$ pxq run %s\n", run.name)
		}
		if run.name == "px/http_data" && !f.full && f.output == "table" {
			for i, t := range tables {
				tables[i] = project(t, demoColumns)
			}
		}
		if err := printTables(stdout, tables, f.output, format.Options{MaxWidth: f.maxWidth}); err != nil {
			return err
		}
	}
	if f.output == "table" {
		fmt.Fprint(stdout, demoNextSteps)
	}
	if f.ui != "" {
		return serveDemoUI(ctx, stdout, eng, lib, f.ui, now, f.offline)
	}
	return nil
}

// serveDemoUI serves the web UI over the demo's data until ctx ends.
// Queries run as of the end of the data, traced or replayed.
func serveDemoUI(ctx context.Context, stdout io.Writer, eng *engine.Engine, lib *scripts.Library, addr string, now time.Time, replay bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--ui: %w", err)
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
		ln.Close()
		return usagef("--ui %s: the demo serves the UI on a loopback address only (pxq ui --token … for more)", addr)
	}
	// Tracing stopped with the demo, so "now" is frozen at the end of
	// its data (as for a replayed capture): scripts that look back from
	// now find the demo's traffic however long the page stays open.
	what := "the demo's traffic, traced by this run"
	if replay {
		what = "a capture of the demo shipped inside pxq"
	}
	cfg := ui.Config{Runner: eng, Library: lib, Now: func() time.Time { return now }, DefaultScript: "px/http_data",
		Entities: entityNames(eng.Metadata()),
		Note:     fmt.Sprintf("Data: %s. Tracing has stopped, so every query runs as of the end of the data (now is frozen at %s).", what, now.Format("15:04:05 MST"))}
	srv := &http.Server{Handler: ui.Handler(cfg), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "\nweb UI: http://%s/?script=px/http_data  (Ctrl-C to stop)\n", ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

const demoNextSteps = `
Next steps:
  pxq scripts list                          the script library (slow requests, errors, service graph, …)
  pxq run px/slow_requests --collect 10s    trace this host for 10 s and run a script
  pxq live px/http_request_stats            redraw a script's output every few seconds, like top
  pxq demo --save-capture ./shop            keep the demo's data; replay with: pxq run px/service_stats --capture ./shop
  pxq demo --ui 127.0.0.1:7474              the same in the web UI: tables, charts, the service graph
  docs/language.md, docs/tables.md          write your own scripts (pxq run ./mine.pxl)
`

// errNoBPF says that the demo could not trace and should fall back.
var errNoBPF = errors.New("eBPF tracing is not available")

// traceDemo runs the demo app as child processes, traces them while the
// load generator sends its requests, and returns the time to run the
// scripts at and a function that stops the app (after the scripts ran,
// so that the processes' command lines still resolve).
func traceDemo(ctx context.Context, stderr io.Writer, eng *engine.Engine, f *demoFlags) (time.Time, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("finding the pxq binary: %w", err)
	}
	sp := startSpinner(stderr, "starting the demo shop ("+strings.Join(demo.Services, ", ")+", dns)")
	app, err := demo.StartProcesses(ctx, exe, stderr)
	if err != nil {
		sp.stop("failed")
		return time.Time{}, nil, err
	}
	lg, err := app.StartLoadgen(ctx, exe, demo.LoadOptions{Rate: f.rate, Duration: f.duration, Seed: 1}, stderr)
	if err != nil {
		sp.stop("failed")
		app.Stop()
		return time.Time{}, nil, err
	}
	pids := app.PIDs()
	// Both sides of each request are recorded, although pxq traces its
	// server too (by default only the server's row is kept): the demo
	// shows who calls whom, which the server's row names only by address.
	tr, err := ebpf.New(ebpf.Config{OnlyPIDs: pids, AllClientSides: true, ConnStatsPeriod: time.Second, StatsPeriod: time.Second}, eng.Store())
	if err != nil {
		sp.stop("done")
		app.Stop()
		explainNoBPF(stderr, err)
		return time.Time{}, nil, errNoBPF
	}
	tr.Start(ctx)
	// The charges to payments are HTTPS: their plaintext is read by
	// uprobes on the processes' crypto/tls, set once the tracer has
	// examined them.
	if err := tr.WaitTLSScan(ctx); err != nil {
		sp.stop("failed")
		tr.Close()
		app.Stop()
		return time.Time{}, nil, err
	}
	sm, err := proc.NewSampler(proc.Config{Period: time.Second}, eng.Store())
	if err != nil {
		fmt.Fprintf(stderr, "pxq demo: /proc sampling is off: %v\n", err)
	} else {
		sm.Start(ctx)
	}
	if app.CgroupErr != nil {
		sp.stop(fmt.Sprintf("done (pids %s)", joinPIDs(pids)))
		fmt.Fprintf(stderr, "pxq demo: the apps run without cgroups of their own (%v), so they are named by their executable: host/pxq\n", app.CgroupErr)
	} else {
		sp.stop(fmt.Sprintf("done (pids %s, each in cgroup %s/NAME.service)", joinPIDs(pids), demo.Slice))
	}

	sp = startSpinner(stderr, fmt.Sprintf("sending %d requests/s to the frontend for %s, tracing with eBPF", f.rate, f.duration))
	rep, err := lg.Go(ctx, f.duration+10*time.Second)
	if err != nil {
		sp.stop("failed")
		tr.Close()
		app.Stop()
		return time.Time{}, nil, err
	}
	sp.stop(rep.String())
	// Let the last responses reach the ring buffer, then flush.
	time.Sleep(300 * time.Millisecond)
	tr.Close()
	if sm != nil {
		sm.Sample(time.Now())
		sm.Close()
	}
	if f.saveTo != "" {
		self := uint32(os.Getpid())
		if err := saveCapture(stderr, f.saveTo, eng, capture.KeepPIDs(append(pids, self)...)); err != nil {
			app.Stop()
			return time.Time{}, nil, err
		}
	}
	stop := func() {
		if err := app.Stop(); err != nil {
			fmt.Fprintf(stderr, "pxq demo: %v\n", err)
		}
	}
	return time.Now(), stop, nil
}

// explainNoBPF says exactly why tracing failed and how to allow it.
func explainNoBPF(w io.Writer, err error) {
	fmt.Fprintf(w, "pxq demo: cannot trace with eBPF: %v\n", err)
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "pxq runs as uid "+strconv.Itoa(os.Geteuid())+", not root, and the BPF programs need CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE")
	}
	if _, err := os.Stat("/sys/kernel/tracing/events/syscalls"); err != nil {
		if _, err2 := os.Stat("/sys/kernel/debug/tracing/events/syscalls"); err2 != nil {
			missing = append(missing, "the syscall tracepoints are not visible (tracefs is not mounted at /sys/kernel/tracing, and pxq may mount it only as root)")
		}
	}
	for _, m := range missing {
		fmt.Fprintf(w, "  missing: %s\n", m)
	}
	fmt.Fprintln(w, `  to allow it, either:
    sudo pxq demo
    sudo setcap cap_bpf,cap_perfmon,cap_sys_resource,cap_sys_admin+ep "$(command -v pxq)"   # then: pxq demo
  in a container: run it --privileged (docker run --privileged --pid=host …)`)
}

// replayShipped returns an engine holding the capture shipped inside pxq,
// answering metadata from it, and the time to run the scripts at (just
// after its last row).
func replayShipped() (*engine.Engine, time.Time, error) {
	c, err := capture.OpenFS(demo.Shipped(), "shipped with pxq")
	if err != nil {
		return nil, time.Time{}, err
	}
	eng, err := engine.New(engine.Config{Meta: c.Metadata(nil)})
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := c.Load(eng.Store()); err != nil {
		return nil, time.Time{}, err
	}
	return eng, c.AsOf(), nil
}

func joinPIDs(pids []uint32) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	return strings.Join(s, " ")
}

// project keeps the named columns of t, in that order (those it has).
func project(t *format.Table, names []string) *format.Table {
	var idx []int
	out := &format.Table{Name: t.Name, Truncated: t.Truncated}
	for _, n := range names {
		if i := t.Relation.Index(n); i >= 0 {
			idx = append(idx, i)
			out.Relation = append(out.Relation, t.Relation[i])
		}
	}
	schema := out.Relation.ArrowSchema()
	for _, r := range t.Records {
		cols := make([]arrow.Array, len(idx))
		for k, i := range idx {
			cols[k] = r.Column(i)
		}
		out.Records = append(out.Records, array.NewRecord(schema, cols, r.NumRows()))
	}
	return out
}

// spinner shows that something is going on: an animation with the
// seconds spent on a terminal, one line elsewhere.
type spinner struct {
	w    io.Writer
	what string
	tty  bool
	done chan struct{}
	quit chan struct{}
}

func startSpinner(w io.Writer, what string) *spinner {
	s := &spinner{w: w, what: what, tty: isTerminal(w), done: make(chan struct{}), quit: make(chan struct{})}
	if !s.tty {
		fmt.Fprintf(w, "%s…\n", what)
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		frames := `|/-\`
		start := time.Now()
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(s.w, "\r%c %s (%.0fs) ", frames[i%len(frames)], s.what, time.Since(start).Seconds())
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the animation with a result.
func (s *spinner) stop(result string) {
	if s.tty {
		close(s.quit)
		<-s.done
		fmt.Fprintf(s.w, "\r%s: %s\033[K\n", s.what, result)
		return
	}
	fmt.Fprintf(s.w, "  %s\n", result)
}
