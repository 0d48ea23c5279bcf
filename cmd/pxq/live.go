package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/metrics"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
)

// liveFlags are the flags of `pxq live`.
type liveFlags struct {
	args        []string
	startTime   string
	scripts     []string
	every       time.Duration
	iterations  int
	metricsAddr string
	maxWidth    int
	maxRows     int64
	kubeconfig  string
}

var liveF liveFlags

var liveCmd = &cobra.Command{
	Use:   "live NAME|FILE|FOLDER",
	Short: "Trace this host and redraw a script's output every few seconds, like top",
	Long: `pxq live starts the eBPF and /proc sources, keeps them running, and re-runs
the script every --every (5 s), redrawing its tables in the terminal. Ctrl-C
exits. When the output is not a terminal, each run's tables are printed one
after another.

With --metrics-addr, the script's output tables are also served as
Prometheus metrics on /metrics: every numeric column becomes a gauge
pxq_<table>_<column>, labelled by the string columns (see docs/cli.md).`,
	Example: `  sudo pxq live px/http_request_stats
  sudo pxq live px/service_stats --every 2s --start-time=-1m
  sudo pxq live px/http_request_stats --metrics-addr :9464   # curl localhost:9464/metrics
  pxq live px/process_stats --iterations 3                    # /proc only without root`,
	Args: cobra.ExactArgs(1),
	RunE: func(c *cobra.Command, args []string) error {
		return runLive(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), args[0], &liveF)
	},
}

func init() {
	f := liveCmd.Flags()
	f.StringArrayVarP(&liveF.args, "arg", "a", nil, "set a script variable: --arg name=value (repeatable)")
	f.StringVar(&liveF.startTime, "start-time", "", "shorthand for --arg start_time=VALUE (e.g. -1m)")
	f.StringArrayVar(&liveF.scripts, "scripts", nil, "a folder of your own scripts, searched before the library (repeatable; also $PXQ_SCRIPTS)")
	f.DurationVar(&liveF.every, "every", 5*time.Second, "how often the script runs")
	f.IntVar(&liveF.iterations, "iterations", 0, "stop after this many runs (0: until Ctrl-C)")
	f.StringVar(&liveF.metricsAddr, "metrics-addr", "", "serve the script's output as Prometheus metrics on this address (e.g. :9464), path /metrics")
	f.IntVar(&liveF.maxWidth, "max-width", 40, "widest a text cell gets before it is cut")
	f.Int64Var(&liveF.maxRows, "max-rows", 50, "most rows per output table")
	kubeconfigFlag(liveCmd, &liveF.kubeconfig)
	rootCmd.AddCommand(liveCmd)
}

// runLive is `pxq live`.
func runLive(ctx context.Context, stdout, stderr io.Writer, ref string, f *liveFlags) error {
	if f.every < 100*time.Millisecond {
		return usagef("--every %s: want at least 100ms", f.every)
	}
	rf := runFlags{args: f.args, startTime: f.startTime}
	args, err := rf.argMap()
	if err != nil {
		return err
	}
	s, err := scripts.NewLibrary(f.scripts...).Load(ref)
	if err != nil {
		return usageError{err}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()

	log := lineLog(stderr)
	meta, err := openMetadata(ctx, log, f.kubeconfig, "", 0)
	if err != nil {
		return err
	}
	defer meta.Close()
	eng, err := engine.New(engine.Config{Meta: meta, Limits: query.Limits{MaxRowsPerTable: f.maxRows}})
	if err != nil {
		return err
	}
	// Compile once up front, so that a bad script fails before tracing.
	if _, err := engine.Compile(engine.Query{Script: s, Args: args, Now: time.Now()}, eng.Catalog()); err != nil {
		return err
	}
	waitMetadata(ctx, log, meta, syncWait)
	srcs, err := startSources(ctx, stderr, eng, sourceOptions{ProcPeriod: min(f.every, 10*time.Second)})
	if err != nil {
		return err
	}
	defer srcs.Close()

	run := func(ctx context.Context) ([]*format.Table, error) {
		return eng.Collect(ctx, engine.Query{Script: s, Args: args})
	}
	if f.metricsAddr != "" {
		stop, addr, err := serveMetrics(f.metricsAddr, []metrics.Source{{Script: s.Name, Run: run}}, f.every)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(stderr, "pxq live: Prometheus metrics on http://%s/metrics\n", addr)
	}

	tty := isTerminal(stdout)
	tick := time.NewTicker(f.every)
	defer tick.Stop()
	for i := 1; ; i++ {
		tables, err := run(ctx)
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "pxq live %s — %s — every %s — Ctrl-C to quit\n\n", s.Name, time.Now().Format("15:04:05"), f.every)
		if err != nil {
			fmt.Fprintf(&buf, "error: %v\n", err)
		} else if err := printTables(&buf, tables, "table", format.Options{MaxWidth: f.maxWidth}); err != nil {
			return err
		}
		if tty {
			io.WriteString(stdout, "\033[H\033[2J") // home, clear
		}
		stdout.Write(buf.Bytes())
		if f.iterations > 0 && i >= f.iterations {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// serveMetrics serves sources' tables on addr's /metrics until stop is
// called. It returns the address it listens on.
func serveMetrics(addr string, sources []metrics.Source, cache time.Duration) (stop func(), bound string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	// Scrapes within one period share a run of the scripts.
	mux.Handle("/metrics", metrics.Handler(sources, metrics.Options{CacheFor: cache / 2}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "pxq: metrics server: %v\n", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, ln.Addr().String(), nil
}
