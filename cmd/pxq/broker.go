package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/server"
	"github.com/pxq-dev/pxq/server/auth"
)

// brokerFlags are pxq broker's flags.
type brokerFlags struct {
	kubeconfig   string
	listen       string
	http         string
	agents       string
	agentsDNS    string
	queryTimeout time.Duration
	scripts      []string
	sec          securityFlags
	limits       limitFlags
	dial         auth.ClientConfig
	otel         otelFlags
}

var brokerF brokerFlags

var brokerCmd = &cobra.Command{
	Use:   "broker",
	Short: "Run the query broker: plan scripts, run them on the agents, merge, serve the API",
	Long: `pxq broker serves the public gRPC API (Pixie's VizierService, pxq's PxqService,
gRPC health and reflection) over a set of pxq agents. It compiles each script
against the union of the agents' tables, sends the node fragment of the plan
to every agent, and merges their partial results (partial aggregates, joins,
limits) as they stream in.

An agent that is down, fails or misses the query's deadline is left out and
named in a warning (in the pxq-warning trailer, and in PxqService's stats);
clients that want all or nothing send the header pxq-all-or-nothing: true.

Agents come from --agents (a static list) or --agents-dns (every address of a
DNS name, e.g. a headless Service over the agents' DaemonSet).`,
	Example: `  pxq broker --agents 10.0.0.1:50052,10.0.0.2:50052 --agent-token-file /etc/pxq/agent-token
  pxq broker --agents-dns pxq-agent.pxq.svc.cluster.local:50052 --listen :50051 --token-file /etc/pxq/token`,
	Args: cobra.NoArgs,
	RunE: func(c *cobra.Command, _ []string) error {
		return runBroker(c.Context(), c.ErrOrStderr(), &brokerF)
	},
}

func init() {
	f := brokerCmd.Flags()
	f.StringVar(&brokerF.listen, "listen", "127.0.0.1:50051", "gRPC address of the public API (host:port)")
	f.StringVar(&brokerF.http, "http", "127.0.0.1:7474", "serve the web UI on this address (host:port; same --token-file; \"\" for none)")
	kubeconfigFlag(brokerCmd, &brokerF.kubeconfig)
	f.StringVar(&brokerF.agents, "agents", "", "the agents' addresses: host:port,host:port,…")
	f.StringVar(&brokerF.agentsDNS, "agents-dns", "", "discover agents as every address of this name: name:port")
	f.DurationVar(&brokerF.queryTimeout, "query-timeout", broker.DefaultQueryTimeout, "deadline of a query whose client sets none")
	f.StringArrayVar(&brokerF.scripts, "scripts", nil, "a folder of your own scripts, searched before the library (repeatable)")
	brokerF.sec.register(brokerCmd, "clients send it as authorization: Bearer or pixie-api-key")
	f.StringVar(&brokerF.dial.TokenFile, "agent-token-file", "", "send this token to the agents")
	f.StringVar(&brokerF.dial.CAFile, "agent-ca", "", "verify the agents' TLS certificates with these CAs (turns TLS on)")
	f.StringVar(&brokerF.dial.CertFile, "agent-cert", "", "client certificate for the agents' mutual TLS")
	f.StringVar(&brokerF.dial.KeyFile, "agent-key", "", "the client certificate's key")
	f.StringVar(&brokerF.dial.ServerName, "agent-server-name", "", "name to check in the agents' certificates")
	brokerF.limits.register(brokerCmd, limitMemory|limitResults|limitAdmission|limitScript)
	brokerF.otel.register(brokerCmd)
	rootCmd.AddCommand(brokerCmd)
}

func runBroker(ctx context.Context, stderr io.Writer, f *brokerFlags) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := signalContext(ctx)
	defer cancel()
	// Metadata functions that run on the broker (above a join or an
	// aggregate) ask the agents for processes, and for cluster objects
	// unless the broker's own Kubernetes store answers.
	meta, err := openMetadata(ctx, log, f.kubeconfig, "", 0)
	if err != nil {
		return err
	}
	defer meta.Close()
	if meta.Server() == "" {
		log.Info("broker: no Kubernetes metadata of its own: metadata functions above aggregates ask the agents")
	}
	cfg := broker.Config{Dial: f.dial, QueryTimeout: f.queryTimeout, Log: log, Meta: meta}
	switch {
	case f.agents != "" && f.agentsDNS != "":
		return usagef("give --agents or --agents-dns, not both")
	case f.agents != "":
		for _, a := range strings.Split(f.agents, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.Agents = append(cfg.Agents, a)
			}
		}
	case f.agentsDNS != "":
		d, err := broker.DNSDiscovery(f.agentsDNS)
		if err != nil {
			return usageError{err}
		}
		cfg.Discover = d
	default:
		return usagef("no agents: give --agents host:port,… or --agents-dns name:port")
	}
	b, err := broker.New(cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	lis, opts, err := f.sec.listen(f.listen, log)
	if err != nil {
		return err
	}
	gate, err := f.limits.gate()
	if err != nil {
		lis.Close()
		return err
	}
	lim := f.limits.limits()
	lim.Timeout = f.queryTimeout
	runner := &query.Runner{Backend: b, Limits: lim, Gate: gate, Log: log}
	lib := scripts.NewLibrary(f.scripts...)
	stopOTel, err := f.otel.start(ctx, log, runner, lib)
	if err != nil {
		lis.Close()
		return err
	}
	defer stopOTel()
	g := server.New(server.Config{Runner: runner, Library: lib}).NewGRPCServer(opts...)
	log.Info("pxq broker: gRPC API", "addr", lis.Addr().String(), "agents", len(cfg.Agents), "agents_dns", f.agentsDNS)
	return serveUntilDone(ctx, log, gate, g, lis, f.http, runner, lib, b.Metadata(), &f.sec)
}
