// Command pxq is an embedded query engine for live Kubernetes and Linux
// observability: eBPF and /proc sources, PxL scripts, a vectorized Arrow
// executor. Each subcommand lives in its own file and registers itself.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/lang"
)

// Exit codes that scripts can rely on.
const (
	exitOK      = 0
	exitError   = 1 // a runtime failure (I/O, execution, permissions)
	exitUsage   = 2 // bad flags or arguments
	exitCompile = 3 // the script does not compile
)

var rootCmd = &cobra.Command{
	Use:   "pxq",
	Short: "Query live HTTP traffic, connections and processes with PxL",
	Long: `pxq watches every process's network syscalls with eBPF and samples /proc,
keeps the rows in memory, and answers PxL scripts (Pixie's Python dialect)
over them with a vectorized Arrow engine.

Start with:
  pxq demo                      run a demo app, capture its traffic, show it
  pxq demo --ui 127.0.0.1:7474  the same, then browse it in the web UI
  pxq scripts list              the script library
  pxq run px/http_data --collect 10s
                                capture 10 s of this host's HTTP traffic and show it
  pxq serve                     keep tracing; gRPC API on :50051, web UI on :7474`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// usageError marks errors in how pxq was called.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func init() {
	versionCmd.Example = "  pxq version"
}

func main() {
	rootCmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	// `pxq nosuch` is an unknown command (a usage error); `pxq` alone
	// prints the help.
	rootCmd.Args = cobra.NoArgs
	rootCmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	usageArgs(rootCmd)
	err := rootCmd.Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	fmt.Fprintln(os.Stderr, "pxq:", err)
	var le *lang.Error
	var ue usageError
	switch {
	case errors.As(err, &le):
		os.Exit(exitCompile)
	case errors.As(err, &ue):
		os.Exit(exitUsage)
	}
	os.Exit(exitError)
}

// usageArgs makes the argument checks of c and its subcommands report
// usage errors (exit code 2).
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}
