package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/scripts"
)

var explainF runFlags

var explainCmd = &cobra.Command{
	Use:   "explain NAME|FILE|FOLDER",
	Short: "Print a script's plans: logical, optimized, and the agent and broker fragments",
	Example: `  pxq explain px/http_request_stats
  pxq explain ./my_script.pxl --arg start_time=-1h
  pxq explain ./my_script.pxl --table http_events=events.parquet`,
	Args: cobra.ExactArgs(1),
	RunE: func(c *cobra.Command, args []string) error {
		a, err := explainF.argMap()
		if err != nil {
			return err
		}
		s, err := scripts.NewLibrary(explainF.scripts...).Load(args[0])
		if err != nil {
			return usageError{err}
		}
		// Files named by --table and --capture: the plans read them, and
		// their scans are described at the end.
		eng, stop, err := newLocalEngine(c.Context(), c.ErrOrStderr(), lineLog(c.ErrOrStderr()), &explainF, false)
		if err != nil {
			return err
		}
		defer stop()
		now := time.Now()
		if !explainF.asOf.IsZero() {
			now = explainF.asOf
		}
		p, err := engine.CompileLogical(engine.Query{Script: s, Args: a, Now: now}, eng.Catalog())
		if err != nil {
			return err
		}
		text, err := planner.Explain(p)
		if err != nil {
			return err
		}
		opt, err := planner.Optimize(p)
		if err != nil {
			return err
		}
		scans, err := exec.ExplainScans(opt, eng.Store())
		if err != nil {
			return err
		}
		if scans != "" {
			text += "\n== file scans (what the optimized plan reads) ==\n" + scans
		}
		fmt.Fprint(c.OutOrStdout(), text)
		return nil
	},
}

func init() {
	explainCmd.Flags().StringArrayVarP(&explainF.args, "arg", "a", nil, "set a script variable: --arg name=value")
	explainCmd.Flags().StringVar(&explainF.startTime, "start-time", "", "shorthand for --arg start_time=VALUE")
	explainCmd.Flags().StringArrayVar(&explainF.scripts, "scripts", nil, "a folder of your own scripts")
	explainCmd.Flags().StringArrayVar(&explainF.tables, "table", nil, "tables from files, as pxq run takes them: also shows which columns and row groups each scan reads")
	explainCmd.Flags().StringVar(&explainF.capture, "capture", "", "a capture folder, as pxq run takes it")
	rootCmd.AddCommand(explainCmd)
}
