package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/tables"
)

// runFlags are the flags of commands that run scripts.
type runFlags struct {
	args       []string
	output     string
	startTime  string
	tables     []string
	capture    string
	collect    time.Duration
	scripts    []string
	maxWidth   int
	maxRows    int64
	saveTo     string
	kubeconfig string
	limits     limitFlags
	// asOf is the query's now when it is not the present: the end of a
	// capture loaded with --capture (and no --collect).
	asOf time.Time
}

func (f *runFlags) register(c *cobra.Command) {
	c.Flags().StringArrayVarP(&f.args, "arg", "a", nil, "set a script variable: --arg name=value (repeatable)")
	c.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table, json, csv or arrow")
	c.Flags().StringVar(&f.startTime, "start-time", "", "shorthand for --arg start_time=VALUE (e.g. -10m)")
	c.Flags().StringArrayVar(&f.tables, "table", nil, "load a table from files: --table http_events=events.parquet, a folder or a glob ('events/*.parquet'); .parquet, .arrow, .csv")
	c.Flags().StringVar(&f.capture, "capture", "", "load a capture folder (as `pxq capture` and --save-capture write it), with its metadata; relative times count back from its end")
	c.Flags().DurationVar(&f.collect, "collect", 0, "trace this host for this long (eBPF and /proc) before running the script")
	c.Flags().StringArrayVar(&f.scripts, "scripts", nil, "a folder of your own scripts, searched before the library (repeatable; also $PXQ_SCRIPTS)")
	c.Flags().IntVar(&f.maxWidth, "max-width", 60, "widest a text cell gets before it is cut")
	c.Flags().Int64Var(&f.maxRows, "max-rows", 10000, "most rows per output table")
	f.limits.register(c, limitTimeout|limitMemory|limitResults|limitScript)
	c.Flags().StringVar(&f.saveTo, "save-capture", "", "write the tables (collected or loaded) and their metadata to this folder as a capture")
	kubeconfigFlag(c, &f.kubeconfig)
}

// engineLimits are the limits of the queries the embedded engine runs.
func (f *runFlags) engineLimits() query.Limits {
	l := f.limits.limits()
	l.MaxRowsPerTable = f.maxRows
	return l
}

func (f *runFlags) argMap() (map[string]string, error) {
	m := map[string]string{}
	for _, a := range f.args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("--arg %q: want name=value", a)
		}
		m[k] = v
	}
	if f.startTime != "" {
		m["start_time"] = f.startTime
	}
	return m, nil
}

var runF runFlags

var runCmd = &cobra.Command{
	Use:   "run NAME|FILE|FOLDER",
	Short: "Run a PxL script and print its output tables",
	Long: `Run a script from the library (px/http_data), a script folder in the layout of
Pixie's library (one .pxl, vis.json, manifest.yaml) or a lone .pxl file.

Data comes from this host (--collect traces it for a while first), from files
(--table, --capture), or from a running pxq server (see pxq serve).`,
	Example: `  pxq run px/http_data --collect 10s
  pxq run px/http_request_stats --capture ./capture --start-time=-1h
  pxq run ./my_script.pxl --table http_events=events.parquet -o json
  pxq run ./px_folder --arg destination_filter=checkout -o csv`,
	Args: cobra.ExactArgs(1),
	RunE: func(c *cobra.Command, args []string) error {
		return runScript(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), args[0], &runF)
	},
}

func init() {
	runF.register(runCmd)
	rootCmd.AddCommand(runCmd)
}

// runScript loads data as the flags say, runs the script and prints its
// tables.
func runScript(ctx context.Context, stdout, stderr io.Writer, ref string, f *runFlags) error {
	switch f.output {
	case "table", "json", "csv", "arrow":
	default:
		return usagef("-o %q: want table, json, csv or arrow", f.output)
	}
	args, err := f.argMap()
	if err != nil {
		return err
	}
	lib := scripts.NewLibrary(f.scripts...)
	s, err := lib.Load(ref)
	if err != nil {
		return usageError{err}
	}
	if remoteF.broker != "" {
		return runRemote(ctx, stdout, stderr, s, args, f)
	}
	eng, stop, err := newLocalEngine(ctx, stderr, lineLog(stderr), f, f.collect > 0)
	if err != nil {
		return err
	}
	defer stop()
	defer eng.Tracepoints().Close() // the script's bpftrace programs (pxtrace)
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := signalContext(ctx)
	defer cancel()
	q := engine.Query{Script: s, Args: args}
	if f.collect == 0 {
		q.Now = f.asOf
	}
	if f.output == "csv" || f.output == "json" {
		return runStreamed(ctx, stdout, stderr, eng, q, f)
	}
	var col query.Collector
	res, err := eng.Run(ctx, q, &col)
	if err != nil {
		return err
	}
	tables := col.Tables
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "pxq: warning:", w)
	}
	warnCut(stderr, tables, res.Truncated)
	if f.collect == 0 && f.capture == "" && len(f.tables) == 0 && allEmpty(tables) {
		// A lone `pxq run` has no history of its own: say where data
		// comes from rather than leave the user with empty tables.
		fmt.Fprintln(stderr, noDataHint)
	}
	return printTables(stdout, tables, f.output, format.Options{MaxWidth: f.maxWidth})
}

// runStreamed runs q with -o csv or json, writing each batch of rows as
// it comes (format.Stream) rather than collecting the result first.
func runStreamed(ctx context.Context, stdout, stderr io.Writer, eng *engine.Engine, q engine.Query, f *runFlags) error {
	var s *format.Stream
	if f.output == "json" {
		s = format.NewJSONStream(stdout)
	} else {
		// CSV titles each table when there are several: count the
		// displayed ones (a compile error is Run's to report).
		shown := 0
		if p, err := engine.Compile(q, eng.Catalog()); err == nil {
			for _, sk := range p.Sinks {
				if sk.OTel == nil {
					shown++
				}
			}
		}
		s = format.NewCSVStream(stdout, shown > 1)
	}
	res, err := eng.Run(ctx, q, s)
	if ferr := s.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "pxq: warning:", w)
	}
	empty := true
	for _, t := range s.Tables() {
		if t.Truncated && !res.Truncated {
			fmt.Fprintf(stderr, "pxq: warning: table %s was cut at %d rows, the row cap (--max-rows): raise it, or filter or aggregate more\n", t.Name, t.Rows)
		}
		empty = empty && t.Rows == 0
	}
	if f.collect == 0 && f.capture == "" && len(f.tables) == 0 && empty {
		fmt.Fprintln(stderr, noDataHint)
	}
	return nil
}

// noDataHint is what a lone `pxq run` says when its tables are empty.
const noDataHint = "pxq: no data: this process has not traced anything. Trace first (--collect 10s), " +
	"read files (--capture DIR, --table name=FILE), or ask a running server (--broker HOST:PORT, see pxq serve)."

func allEmpty(tables []*format.Table) bool {
	for _, t := range tables {
		if t.Rows() > 0 {
			return false
		}
	}
	return true
}

// newLocalEngine makes the embedded engine and fills it from files or by
// tracing this host for f.collect. live says that the engine's rows come
// from tracing this host (now or, for serve and ui, once the caller
// starts the sources): its metadata is then this machine's, Kubernetes
// when a cluster is configured (openMetadata); so it is with
// --kubeconfig. stop stops the sources and the metadata.
func newLocalEngine(ctx context.Context, stderr io.Writer, log *slog.Logger, f *runFlags, live bool) (_ *engine.Engine, stop func(), err error) {
	var meta metadata.Provider
	closeMeta := func() {}
	defer func() {
		if err != nil {
			closeMeta()
		}
	}()
	if live || f.kubeconfig != "" {
		wait := time.Duration(0)
		if f.collect > 0 {
			wait = syncWait
		}
		m, err := openMetadata(ctx, log, f.kubeconfig, "", wait)
		if err != nil {
			return nil, nil, err
		}
		meta, closeMeta = m, m.Close
	} else {
		meta = hostMetadata(stderr)
	}
	var capt *capture.Capture
	if f.capture != "" {
		if capt, err = openCapture(stderr, f.capture); err != nil {
			return nil, nil, err
		}
		// The capture's metadata answers for its rows; this host's for
		// rows collected beside them.
		var next metadata.Provider
		if f.collect > 0 {
			next = meta
		}
		meta = capt.Metadata(next)
	}
	eng, err := engine.New(engine.Config{Meta: meta, Limits: f.engineLimits()})
	if err != nil {
		return nil, nil, err
	}
	for _, t := range f.tables {
		name, path, ok := strings.Cut(t, "=")
		if !ok {
			return nil, nil, usagef("--table %q: want name=file", t)
		}
		var known = tables.All[name].Relation
		if _, err := eng.Store().Load(name, path, known); err != nil {
			return nil, nil, err
		}
	}
	if capt != nil {
		if err := capt.Load(eng.Store()); err != nil {
			return nil, nil, err
		}
		// Relative times ('-5m') count back from the capture's end.
		f.asOf = capt.AsOf()
	}
	stop = closeMeta
	if f.collect > 0 {
		if ctx == nil {
			ctx = context.Background()
		}
		srcs, err := startSources(ctx, stderr, eng, sourceOptions{})
		if err != nil {
			return nil, nil, err
		}
		progress(stderr, fmt.Sprintf("tracing this host for %s", f.collect), f.collect)
		srcs.Flush()
		stop = func() { srcs.Close(); closeMeta() }
	}
	if f.saveTo != "" {
		if err := saveCapture(stderr, f.saveTo, eng, nil); err != nil {
			stop()
			return nil, nil, err
		}
	}
	return eng, stop, nil
}

// warnCut says on stderr which tables were cut at the row cap, unless
// a result limit cut them (its warning says so).
func warnCut(stderr io.Writer, tables []*format.Table, byResultLimit bool) {
	if byResultLimit {
		return
	}
	for _, t := range tables {
		if t.Truncated {
			fmt.Fprintf(stderr, "pxq: warning: table %s was cut at %d rows, the row cap (--max-rows): raise it, or filter or aggregate more\n", t.Name, t.Rows())
		}
	}
}

// printTables writes tables in the chosen format. A table cut at the row
// cap says so in the output: text in its title, JSON with a last object
// {"_table": NAME, "_truncated": true, "_rows": N}, CSV with a last line
// "# table NAME: cut at N rows".
func printTables(w io.Writer, tables []*format.Table, output string, opts format.Options) error {
	for _, t := range tables {
		var err error
		switch output {
		case "json":
			err = format.JSON(w, t)
			if err == nil && t.Truncated {
				err = format.TruncationMarker(w, "json", t.Name, t.Rows())
			}
		case "csv":
			err = format.CSV(w, t, len(tables) > 1)
			if err == nil && t.Truncated {
				err = format.TruncationMarker(w, "csv", t.Name, t.Rows())
			}
		case "arrow":
			err = format.Arrow(w, t)
		default:
			err = format.Text(w, t, opts)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// progress shows a countdown on a terminal while waiting d.
func progress(w io.Writer, what string, d time.Duration) {
	end := time.Now().Add(d)
	tty := isTerminal(w)
	if !tty {
		fmt.Fprintf(w, "%s…\n", what)
		time.Sleep(d)
		return
	}
	for {
		left := time.Until(end)
		if left <= 0 {
			fmt.Fprintf(w, "\r%s: done%s\n", what, strings.Repeat(" ", 10))
			return
		}
		fmt.Fprintf(w, "\r%s: %ds left ", what, int(left.Seconds()+0.999))
		time.Sleep(min(left, 250*time.Millisecond))
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
