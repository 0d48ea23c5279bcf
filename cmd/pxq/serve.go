package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/metrics"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/server"
	"github.com/pxq-dev/pxq/server/auth"
)

// securityFlags secure a gRPC server: TLS, mutual TLS, a bearer token.
type securityFlags struct {
	cert, key, clientCA string
	tokenFile           string
	insecure            bool
}

func (s *securityFlags) register(c *cobra.Command, who string) {
	c.Flags().StringVar(&s.cert, "tls-cert", "", "serve TLS with this certificate chain (PEM)")
	c.Flags().StringVar(&s.key, "tls-key", "", "the TLS certificate's private key (PEM)")
	c.Flags().StringVar(&s.clientCA, "tls-client-ca", "", "require client certificates signed by these CAs (mutual TLS)")
	c.Flags().StringVar(&s.tokenFile, "token-file", "", "require this bearer token on every call ("+who+"; file holding the token)")
	c.Flags().BoolVar(&s.insecure, "insecure", false, "listen on the given address even with no token and no client CA")
}

func (s *securityFlags) config() auth.ServerConfig {
	return auth.ServerConfig{CertFile: s.cert, KeyFile: s.key, ClientCAFile: s.clientCA, TokenFile: s.tokenFile}
}

// listenGRPC applies the security flags: it returns the server options
// and a listener, on loopback only when nothing restricts callers.
func (s *securityFlags) listen(addr string, log *slog.Logger) (net.Listener, []grpc.ServerOption, error) {
	cfg := s.config()
	opts, err := cfg.ServerOptions()
	if err != nil {
		return nil, nil, usageError{err}
	}
	bound, note, err := auth.BindAddr(addr, cfg.Secured(), s.insecure)
	if err != nil {
		return nil, nil, usageError{err}
	}
	if note != "" {
		log.Warn(note)
	}
	lis, err := net.Listen("tcp", bound)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", bound, err)
	}
	return lis, opts, nil
}

// serveFlags are pxq serve's flags.
type serveFlags struct {
	listen         string
	http           string
	metricsAddr    string
	metricsScripts []string
	sec            securityFlags
	limits         limitFlags
	run            runFlags
	otel           otelFlags
}

var serveF serveFlags

var serveCmd = &cobra.Command{
	Use:   "serve",
	Short: "Serve the public gRPC API over this host's data (embedded: no agents)",
	Long: `pxq serve runs the embedded engine over this host's live data (eBPF and /proc)
or over files, and serves pxq's public gRPC API: Pixie's VizierService (usable
by Pixie's Go and Python clients in direct mode), pxq's own PxqService, gRPC
health and reflection.

Without --token-file or --tls-client-ca it listens on 127.0.0.1 only.`,
	Example: `  sudo pxq serve
  sudo pxq serve --kubeconfig ~/.kube/config   # on a node: pods and services from the cluster
  pxq serve --capture ./shop --listen 127.0.0.1:50051
  pxq serve --listen :50051 --token-file /etc/pxq/token --tls-cert tls.crt --tls-key tls.key`,
	Args: cobra.NoArgs,
	RunE: func(c *cobra.Command, _ []string) error {
		return runServe(c.Context(), c.ErrOrStderr(), &serveF)
	},
}

func init() {
	f := serveCmd.Flags()
	f.StringVar(&serveF.listen, "listen", "127.0.0.1:50051", "gRPC address (host:port)")
	f.StringVar(&serveF.http, "http", "127.0.0.1:7474", "serve the web UI on this address (host:port; same --token-file; \"\" for none)")
	serveF.sec.register(serveCmd, "Pixie clients send it as pixie-api-key")
	f.StringArrayVar(&serveF.run.tables, "table", nil, "load a table from a file instead of tracing: --table http_events=events.parquet")
	f.StringVar(&serveF.run.capture, "capture", "", "load a capture folder instead of tracing this host")
	f.StringVar(&serveF.metricsAddr, "metrics-addr", "", "also serve chosen scripts' outputs as Prometheus metrics on this address, path /metrics")
	f.StringArrayVar(&serveF.metricsScripts, "metrics-script", nil, "a script whose output --metrics-addr exports (repeatable; default px/http_request_stats)")
	f.StringArrayVar(&serveF.run.scripts, "scripts", nil, "a folder of your own scripts, searched before the library (repeatable)")
	kubeconfigFlag(serveCmd, &serveF.run.kubeconfig)
	serveF.limits.register(serveCmd, limitTimeout|limitMemory|limitResults|limitAdmission|limitScript)
	serveF.otel.register(serveCmd)
	rootCmd.AddCommand(serveCmd)
}

func runServe(ctx context.Context, stderr io.Writer, f *serveFlags) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := signalContext(ctx)
	defer cancel()
	lis, opts, err := f.sec.listen(f.listen, log)
	if err != nil {
		return err
	}
	live := f.run.capture == "" && len(f.run.tables) == 0
	eng, stop, err := newLocalEngine(ctx, stderr, log, &f.run, live)
	if err != nil {
		lis.Close()
		return err
	}
	defer stop()
	if live {
		srcs, err := startSources(ctx, stderr, eng, sourceOptions{})
		if err != nil {
			lis.Close()
			return err
		}
		defer srcs.Close()
	}
	lib := scripts.NewLibrary(f.run.scripts...)
	gate, err := f.limits.gate()
	if err != nil {
		lis.Close()
		return err
	}
	runner := &query.Runner{Backend: eng, Limits: f.limits.limits(), Gate: gate, Log: log}
	if asOf := f.run.asOf; !asOf.IsZero() {
		// Relative times count back from the end of the capture.
		runner.Now = func() time.Time { return asOf }
	}
	if f.metricsAddr != "" {
		stopMetrics, addr, err := serveLibraryMetrics(f.metricsAddr, runner, lib, f.metricsScripts)
		if err != nil {
			lis.Close()
			return err
		}
		defer stopMetrics()
		log.Info("pxq serve: Prometheus metrics", "url", "http://"+addr+"/metrics")
	}
	stopOTel, err := f.otel.start(ctx, log, runner, lib)
	if err != nil {
		lis.Close()
		return err
	}
	defer stopOTel()
	g := server.New(server.Config{Runner: runner, Library: lib}).NewGRPCServer(opts...)
	log.Info("pxq serve: gRPC API", "addr", lis.Addr().String())
	return serveUntilDone(ctx, log, gate, g, lis, f.http, runner, lib, eng.Metadata(), &f.sec)
}

// shutdownGrace is how long a stopping server waits for its calls to end
// (running queries are cancelled first), per server (gRPC, HTTP).
const shutdownGrace = 2 * time.Second

// exitGrace is how long after the first SIGINT or SIGTERM pxq exits
// whatever is still running.
const exitGrace = 8 * time.Second

// signalContext ends on SIGINT or SIGTERM. A second signal exits at
// once, and so does pxq when it has not stopped exitGrace after the
// first: a pod's container must stop within its grace period.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-ctx.Done():
			return
		}
		fmt.Fprintf(os.Stderr, "pxq: %v: stopping (again to exit at once)\n", sig)
		cancel()
		select {
		case sig = <-sigs:
			fmt.Fprintf(os.Stderr, "pxq: %v again: exiting\n", sig)
		case <-time.After(exitGrace):
			fmt.Fprintf(os.Stderr, "pxq: not stopped %s after %v: exiting\n", exitGrace, sig)
		}
		code := 1
		if s, ok := sig.(syscall.Signal); ok {
			code = 128 + int(s)
		}
		os.Exit(code)
	}()
	return ctx, func() {
		cancel()
		// Past this, signals kill the process as they do by default.
		signal.Stop(sigs)
	}
}

// serveUntilDone serves g on lis (and the web UI on httpAddr when set)
// until ctx ends. Then it cancels the running queries (those gate
// admitted), lets the calls end for shutdownGrace, and cuts off the rest.
func serveUntilDone(ctx context.Context, log *slog.Logger, gate *query.Gate, g *grpc.Server, lis net.Listener, httpAddr string, runner *query.Runner, lib *scripts.Library, meta metadata.Provider, sec *securityFlags) error {
	errc := make(chan error, 2)
	go func() { errc <- g.Serve(lis) }()
	var hs *http.Server
	if httpAddr != "" {
		token := ""
		if sec.tokenFile != "" {
			b, err := os.ReadFile(sec.tokenFile)
			if err != nil {
				g.Stop()
				return fmt.Errorf("token file: %w", err)
			}
			token = string(trimSpace(b))
		}
		hl, err := net.Listen("tcp", httpAddr)
		if err != nil {
			g.Stop()
			return fmt.Errorf("--http %s: %w", httpAddr, err)
		}
		if !isLoopback(hl.Addr()) && token == "" {
			hl.Close()
			g.Stop()
			return usagef("--http %s is reachable from other hosts: pass --token-file", httpAddr)
		}
		mux := http.NewServeMux()
		mountUI(mux, runner, lib, token, meta)
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- hs.Serve(hl) }()
		log.Info("web UI", "url", "http://"+hl.Addr().String()+"/")
	}
	var err error
	select {
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	case <-ctx.Done():
		log.Info("stopping: cancelling the running queries")
	}
	gate.Close()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		g.Stop()
	}
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			hs.Close()
		}
	}
	return err
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// serveLibraryMetrics exports the output of the named scripts (run with
// their defaults, through the server's runner and its limits) on addr's
// /metrics.
func serveLibraryMetrics(addr string, runner *query.Runner, lib *scripts.Library, names []string) (func(), string, error) {
	if len(names) == 0 {
		names = []string{"px/http_request_stats"}
	}
	var sources []metrics.Source
	for _, n := range names {
		s, err := lib.Load(n)
		if err != nil {
			return nil, "", usageError{fmt.Errorf("--metrics-script: %w", err)}
		}
		sources = append(sources, metrics.Source{Script: s.Name, Run: func(ctx context.Context) ([]*format.Table, error) {
			tables, _, err := runner.Collect(ctx, query.Request{Script: s})
			return tables, err
		}})
	}
	return serveMetrics(addr, sources, 10*time.Second)
}
