package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/tables"
)

var versionCmd = &cobra.Command{
	Use:   "version",
	Short: "Print pxq's version",
	Args:  cobra.NoArgs,
	Run: func(c *cobra.Command, _ []string) {
		fmt.Fprintf(c.OutOrStdout(), "pxq %s (%s, %s/%s)\n", engine.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	},
}

var schemasCmd = &cobra.Command{
	Use:     "schemas [TABLE]",
	Short:   "List the tables and their columns",
	Example: "  pxq schemas\n  pxq schemas http_events",
	Args:    cobra.MaximumNArgs(1),
	RunE: func(c *cobra.Command, args []string) error {
		w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
		names := tables.Names()
		if len(args) == 1 {
			if _, ok := tables.All[args[0]]; !ok {
				return usagef("no table %q; tables are: %s", args[0], strings.Join(names, ", "))
			}
			names = args
		}
		for _, n := range names {
			t := tables.All[n]
			fmt.Fprintf(w, "%s\t%s\n", t.Name, t.Desc)
			for _, col := range t.Relation {
				sem := ""
				if col.Semantic > 1 {
					sem = col.Semantic.String()
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", col.Name, col.Type, sem, col.Desc)
			}
			fmt.Fprintln(w)
		}
		return w.Flush()
	},
}

var scriptsDirs []string

var scriptsCmd = &cobra.Command{
	Use:   "scripts",
	Short: "List and show the scripts of the library and of your folders",
}

var scriptsListCmd = &cobra.Command{
	Use:     "list",
	Short:   "List every script with its short description",
	Example: "  pxq scripts list\n  pxq scripts list --scripts ./my_scripts",
	Args:    cobra.NoArgs,
	RunE: func(c *cobra.Command, _ []string) error {
		all, err := scripts.NewLibrary(scriptsDirs...).List()
		if err != nil {
			return err
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		w := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
		for _, s := range all {
			fmt.Fprintf(w, "%s\t%s\n", s.Name, s.Short)
		}
		return w.Flush()
	},
}

var scriptsShowCmd = &cobra.Command{
	Use:     "show NAME",
	Short:   "Print a script's description, variables and source",
	Example: "  pxq scripts show px/http_data",
	Args:    cobra.ExactArgs(1),
	RunE: func(c *cobra.Command, args []string) error {
		s, err := scripts.NewLibrary(scriptsDirs...).Load(args[0])
		if err != nil {
			return usageError{err}
		}
		out := c.OutOrStdout()
		fmt.Fprintf(out, "%s — %s\n", s.Name, s.Short)
		if s.Long != "" {
			fmt.Fprintf(out, "\n%s\n", s.Long)
		}
		if s.Vis != nil && len(s.Vis.Variables) > 0 {
			fmt.Fprintln(out, "\nVariables:")
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, v := range s.Vis.Variables {
				def := ""
				if v.DefaultValue != nil {
					def = fmt.Sprintf("(default %q)", *v.DefaultValue)
				}
				fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", v.Name, v.Type, def, v.Description)
			}
			w.Flush()
		}
		fmt.Fprintf(out, "\n%s:\n%s", s.Path, s.PXL)
		return nil
	},
}

func init() {
	scriptsCmd.PersistentFlags().StringArrayVar(&scriptsDirs, "scripts", nil, "a folder of your own scripts (repeatable; also $PXQ_SCRIPTS)")
	scriptsCmd.AddCommand(scriptsListCmd, scriptsShowCmd)
	rootCmd.AddCommand(versionCmd, schemasCmd, scriptsCmd)
}
