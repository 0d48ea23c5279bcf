package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/scripts"
)

var explainF runFlags

var explainCmd = &cobra.Command{
	Use:   "explain NAME|FILE|FOLDER",
	Short: "Print a script's plans: logical, optimized, and the agent and broker fragments",
	Example: `  pxq explain px/http_request_stats
  pxq explain ./my_script.pxl --arg start_time=-1h`,
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
		eng, err := engine.New(engine.Config{})
		if err != nil {
			return err
		}
		p, err := engine.CompileLogical(engine.Query{Script: s, Args: a, Now: time.Now()}, eng.Catalog())
		if err != nil {
			return err
		}
		text, err := planner.Explain(p)
		if err != nil {
			return err
		}
		fmt.Fprint(c.OutOrStdout(), text)
		return nil
	},
}

func init() {
	explainCmd.Flags().StringArrayVarP(&explainF.args, "arg", "a", nil, "set a script variable: --arg name=value")
	explainCmd.Flags().StringVar(&explainF.startTime, "start-time", "", "shorthand for --arg start_time=VALUE")
	explainCmd.Flags().StringArrayVar(&explainF.scripts, "scripts", nil, "a folder of your own scripts")
	rootCmd.AddCommand(explainCmd)
}
