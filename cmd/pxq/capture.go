package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/engine"
)

// captureFlags are the flags of `pxq capture`.
type captureFlags struct {
	duration   time.Duration
	procPeriod time.Duration
	kubeconfig string
	storeSize  byteSize
	spillEvery time.Duration
}

var captureF captureFlags

var captureCmd = &cobra.Command{
	Use:   "capture DIR",
	Short: "Record this host's tables (eBPF and /proc) to a capture folder",
	Long: `pxq capture traces this host for --duration, then writes every table that
got rows to DIR in pxq's capture format: one Parquet file per table,
processes.json (the processes seen, with their command lines, containers
and pods, so that scripts still name them after they exit), metadata.json
(the pods, services, namespaces and nodes of the time range, or the host's
entities in host mode) and manifest.json (pxq's version, hosts, time
range, tables). Replay it anywhere with pxq run --capture DIR: relative
times such as start_time=-5m then count back from the capture's end.

Rows go to DIR as they come: every --spill-every, or sooner when the
store holds a quarter of --store-size or 64 MiB, the rows the store holds are added
to the tables' Parquet files as row groups and leave memory, so that a
long capture is bounded by disk, not memory. The side files and the
manifest are written at the end, also when the capture is stopped by
Ctrl-C or SIGTERM. Should the store ever evict rows before they were
written (the disk or CPU falls behind the sources), pxq says so when it
happens and at the end: how many rows of which table, from when.

Tracing HTTP, DNS and connections needs root (or CAP_BPF, CAP_PERFMON
and CAP_SYS_RESOURCE); without it only the /proc tables are recorded.`,
	Example: `  sudo pxq capture ./host --duration 30s
  pxq run px/service_stats --capture ./host
  pxq run px/http_errors --capture ./host -o json`,
	Args: cobra.ExactArgs(1),
	RunE: func(c *cobra.Command, args []string) error {
		return runCapture(c.Context(), c.ErrOrStderr(), args[0], &captureF)
	},
}

func init() {
	captureCmd.Flags().DurationVar(&captureF.duration, "duration", 30*time.Second, "how long to trace")
	captureCmd.Flags().DurationVar(&captureF.procPeriod, "proc-period", time.Second, "how often /proc is sampled")
	captureF.storeSize = engine.DefaultMaxBytes
	captureCmd.Flags().Var(&captureF.storeSize, "store-size", "most bytes the store holds between two spills to DIR (e.g. 256MiB)")
	captureCmd.Flags().DurationVar(&captureF.spillEvery, "spill-every", 5*time.Second, "how often the rows recorded go to DIR")
	kubeconfigFlag(captureCmd, &captureF.kubeconfig)
	rootCmd.AddCommand(captureCmd)
}

// runCapture is `pxq capture`.
func runCapture(ctx context.Context, stderr io.Writer, dir string, f *captureFlags) error {
	if f.duration <= 0 {
		return usagef("--duration %s: want more than 0", f.duration)
	}
	if f.procPeriod <= 0 {
		return usagef("--proc-period %s: want more than 0", f.procPeriod)
	}
	if f.storeSize < 1<<20 {
		return usagef("--store-size %s: want at least 1MiB", &f.storeSize)
	}
	if f.spillEvery <= 0 {
		return usagef("--spill-every %s: want more than 0", f.spillEvery)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// SIGTERM too (a container stopping): the capture is finished.
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// On a node, the capture keeps the cluster's objects (and the
	// host's entities in host mode).
	meta, err := openMetadata(ctx, lineLog(stderr), f.kubeconfig, "", syncWait)
	if err != nil {
		return err
	}
	defer meta.Close()
	eng, err := engine.New(engine.Config{Meta: meta, MaxBytes: int64(f.storeSize)})
	if err != nil {
		return err
	}
	rec, err := capture.Record(dir, eng.Store(), capture.RecordOptions{Options: capture.Options{PXQVersion: engine.Version},
		Every: f.spillEvery, Warn: func(msg string) { fmt.Fprintln(stderr, "\npxq: warning: "+msg) }})
	if err != nil {
		return err
	}
	srcs, err := startSources(ctx, stderr, eng, sourceOptions{ProcPeriod: f.procPeriod})
	if err != nil {
		rec.Abandon()
		return err
	}
	waitOrInterrupt(ctx, stderr, fmt.Sprintf("recording this host for %s", f.duration), f.duration)
	srcs.Flush()
	// A process seen by a source resolves while it is known to /proc or
	// was looked up before; look everything up now, before it exits.
	m, dropped, err := rec.Close(eng.Metadata())
	for _, d := range dropped {
		fmt.Fprintf(stderr, "pxq: warning: %s: %d rows were dropped from %s on, before they were written: the capture fell behind the sources (a faster disk, a larger --store-size or a shorter --spill-every keeps them)\n",
			d.Table, d.Rows, d.Since.Format("15:04:05"))
	}
	if err != nil {
		return fmt.Errorf("writing the capture: %w", err)
	}
	reportCapture(stderr, dir, m)
	return nil
}

// saveCapture writes the engine's tables and what its metadata provider
// knows of them to dir (see package capture); keep, when set, keeps only
// those processes. Every command that saves a capture calls it.
func saveCapture(stderr io.Writer, dir string, eng *engine.Engine, keep func(pid uint32) bool) error {
	m, err := capture.Write(dir, eng.Store(), eng.Metadata(), capture.Options{PXQVersion: engine.Version, Keep: keep})
	if err != nil {
		return fmt.Errorf("writing the capture: %w", err)
	}
	reportCapture(stderr, dir, m)
	return nil
}

// reportCapture says what a capture written to dir holds.
func reportCapture(stderr io.Writer, dir string, m *capture.Manifest) {
	var rows int64
	for _, t := range m.Tables {
		rows += t.Rows
	}
	fmt.Fprintf(stderr, "capture written to %s (%d tables, %d rows, %s metadata); replay with: pxq run px/http_data --capture %s\n",
		dir, len(m.Tables), rows, m.Metadata, dir)
}

// openCapture opens the capture folder dir, saying on stderr what an
// older capture lacks. Every command that loads a capture calls it.
func openCapture(stderr io.Writer, dir string) (*capture.Capture, error) {
	c, err := capture.Open(dir)
	if err != nil {
		return nil, err
	}
	if c.Note != "" {
		fmt.Fprintln(stderr, "pxq: "+c.Note)
	}
	return c, nil
}

// waitOrInterrupt shows progress for d, or less if ctx ends (Ctrl-C
// stops the recording early and keeps what was recorded).
func waitOrInterrupt(ctx context.Context, w io.Writer, what string, d time.Duration) {
	done := make(chan struct{})
	go func() {
		progress(w, what, d)
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		fmt.Fprintln(w, "\ninterrupted: saving what was recorded")
	}
}
