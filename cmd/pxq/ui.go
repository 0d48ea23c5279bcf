package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/ui"
)

// mountUI serves the web UI from mux at "/" (its API under /api/). The
// handler works under a prefix too: mux.Handle("/ui/",
// http.StripPrefix("/ui", ui.Handler(…))). serve, broker and demo call
// this.
func mountUI(mux *http.ServeMux, runner ui.Runner, lib *scripts.Library, token string, meta metadata.Provider) {
	mux.Handle("/", ui.Handler(ui.Config{Runner: runner, Library: lib, Token: token, Entities: entityNames(meta)}))
}

// entityNames lists what the UI suggests for pod, service, namespace and
// node variables: the cluster's live objects when the metadata comes from
// Kubernetes, else this host as the one node.
func entityNames(meta metadata.Provider) func(kind string) []string {
	if n, ok := meta.(interface{ Names(kind string) []string }); ok {
		return n.Names
	}
	host := ""
	if meta != nil {
		host = meta.Hostname()
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	return func(kind string) []string {
		if kind == "node" && host != "" {
			return []string{host}
		}
		return nil // no metadata that names pods, services or namespaces
	}
}

type uiFlags struct {
	listen string
	token  string
	run    runFlags
	limits limitFlags
}

var uiF uiFlags

var uiCmd = &cobra.Command{
	Use:   "ui",
	Short: "Serve the web UI over this host's live data or a capture",
	Long: `pxq ui runs the embedded engine and serves the web UI: pick a script, set its
variables, see its tables and charts, edit and rerun it, or rerun it live.

Data comes from this host (eBPF and /proc, traced from the start; needs root
for eBPF), or from files (--capture, --table), which are then the only data.
The UI listens on the loopback interface unless told otherwise; listening
anywhere else needs --token (or $PXQ_UI_TOKEN), which the page asks for once.`,
	Example: `  sudo pxq ui
  pxq ui --capture ./shop
  pxq ui --listen 0.0.0.0:7474 --token "$(openssl rand -hex 16)"`,
	Args: cobra.NoArgs,
	RunE: func(c *cobra.Command, _ []string) error {
		return runUI(c.Context(), c.OutOrStdout(), c.ErrOrStderr(), &uiF)
	},
}

func init() {
	f := uiCmd.Flags()
	f.StringVar(&uiF.listen, "listen", "127.0.0.1:7474", "address to serve on (host:port; port 0 picks one)")
	f.StringVar(&uiF.token, "token", os.Getenv("PXQ_UI_TOKEN"), "require this bearer token on the API (default $PXQ_UI_TOKEN)")
	f.StringArrayVar(&uiF.run.tables, "table", nil, "load a table from a file: --table http_events=events.parquet (.arrow, .parquet, .csv)")
	f.StringVar(&uiF.run.capture, "capture", "", "load a capture folder instead of tracing this host; relative times count back from its end")
	f.StringArrayVar(&uiF.run.scripts, "scripts", nil, "a folder of your own scripts, searched before the library (repeatable; also $PXQ_SCRIPTS)")
	f.Int64Var(&uiF.run.maxRows, "max-rows", 10000, "most rows per output table")
	kubeconfigFlag(uiCmd, &uiF.run.kubeconfig)
	uiF.limits.register(uiCmd, limitTimeout|limitMemory|limitResults|limitAdmission|limitScript)
	rootCmd.AddCommand(uiCmd)
}

func runUI(ctx context.Context, stdout, stderr io.Writer, f *uiFlags) error {
	ctx, cancel := signalContext(ctx)
	defer cancel()
	gate, err := f.limits.gate()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usagef("--listen %s: %v", f.listen, err)
	}
	defer ln.Close()
	if !isLoopback(ln.Addr()) && f.token == "" {
		return usagef("--listen %s is reachable from other hosts: pass --token (or set $PXQ_UI_TOKEN) so that only you see this host's traffic", f.listen)
	}
	live := f.run.capture == "" && len(f.run.tables) == 0
	eng, stop, err := newLocalEngine(ctx, stderr, lineLog(stderr), &f.run, live)
	if err != nil {
		return err
	}
	defer stop()
	lim := f.limits.limits()
	lim.MaxRowsPerTable = f.run.maxRows
	runner := &query.Runner{Backend: eng, Limits: lim, Gate: gate}
	cfg := ui.Config{Runner: runner, Library: scripts.NewLibrary(f.run.scripts...), Token: f.token}
	if !live {
		asOf := f.run.asOf
		if !asOf.IsZero() {
			runner.Now = func() time.Time { return asOf }
			cfg.Now = runner.Now
			cfg.Note = "Data: recorded files. Every query runs as of the end of the data (now is frozen at " + asOf.Format("15:04:05 MST") + ")."
		}
	} else {
		srcs, err := startSources(ctx, stderr, eng, sourceOptions{})
		if err != nil {
			return err
		}
		defer srcs.Close()
		cfg.Note = "Data: this host, traced live since " + time.Now().Format("15:04:05 MST") + "."
	}
	cfg.Entities = entityNames(eng.Metadata())
	srv := &http.Server{Handler: ui.Handler(cfg), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "pxq ui: http://%s/\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	gate.Close() // cancels the running queries
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		return srv.Close()
	}
	return nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
