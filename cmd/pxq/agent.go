package main

import (
	"context"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pxq-dev/pxq/agent"
	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
)

// agentFlags are pxq agent's flags.
type agentFlags struct {
	listen     string
	nodeName   string
	asid       uint32
	kubeconfig string
	storeSize  byteSize
	retention  time.Duration
	sec        securityFlags
	limits     limitFlags
	otel       otelFlags
}

var agentF agentFlags

var agentCmd = &cobra.Command{
	Use:   "agent",
	Short: "Run this node's agent: sources, table store and the fragment service for a broker",
	Long: `pxq agent traces this node (eBPF and /proc), keeps the rows in its table store,
and runs the node fragments that a pxq broker sends it, streaming their
results back as Arrow IPC. On Kubernetes it runs as a DaemonSet (see deploy/).

The agent must accept only its broker: give it --token-file (the broker sends
the same token with --agent-token-file) and/or --tls-cert, --tls-key and
--tls-client-ca (the broker presents a client certificate). Without either it
listens on 127.0.0.1 only.`,
	Example: `  sudo pxq agent --listen :50052 --token-file /etc/pxq/agent-token`,
	Args:    cobra.NoArgs,
	RunE: func(c *cobra.Command, _ []string) error {
		return runAgent(c.Context(), c.ErrOrStderr(), &agentF)
	},
}

func init() {
	f := agentCmd.Flags()
	f.StringVar(&agentF.listen, "listen", "127.0.0.1:50052", "gRPC address (host:port)")
	f.StringVar(&agentF.nodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME, else the hostname)")
	kubeconfigFlag(agentCmd, &agentF.kubeconfig)
	f.Uint32Var(&agentF.asid, "asid", 0, "this agent's short id in UPIDs (default: a hash of the node name)")
	agentF.storeSize = engine.DefaultMaxBytes
	f.Var(&agentF.storeSize, "store-size", "most bytes the tables hold together (e.g. 1GiB); past it the oldest rows go")
	f.DurationVar(&agentF.retention, "retention", table.DefaultMaxAge, "how long rows are kept")
	agentF.sec.register(agentCmd, "the broker's --agent-token-file")
	agentF.limits.register(agentCmd, limitMemory|limitAdmission)
	agentF.otel.register(agentCmd)
	rootCmd.AddCommand(agentCmd)
}

func runAgent(ctx context.Context, stderr io.Writer, f *agentFlags) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := signalContext(ctx)
	defer cancel()
	node := f.nodeName
	if node == "" {
		node, _ = os.Hostname()
	}
	asid := f.asid
	if asid == 0 {
		h := fnv.New32a()
		h.Write([]byte(node))
		asid = h.Sum32()>>1 | 1
	}
	gate, err := f.limits.gate()
	if err != nil {
		return err
	}
	lis, opts, err := f.sec.listen(f.listen, log)
	if err != nil {
		return err
	}
	// On Kubernetes, metadata comes from the API server once it answers;
	// until then, and elsewhere, from this host's /proc. The agent
	// serves at once either way.
	meta, err := openMetadata(ctx, log, f.kubeconfig, node, 0)
	if err != nil {
		lis.Close()
		return err
	}
	defer meta.Close()
	eng, err := engine.New(engine.Config{Meta: meta, Hostname: node, ASID: asid, Limits: f.limits.limits(),
		MaxBytes: int64(f.storeSize), MaxAge: f.retention})
	if err != nil {
		lis.Close()
		return err
	}
	srcs, err := startSources(ctx, stderr, eng, sourceOptions{})
	if err != nil {
		lis.Close()
		return err
	}
	defer srcs.Close()
	// Export scripts on an agent export this node's rows, through the
	// same gate as the broker's fragments.
	stopOTel, err := f.otel.start(ctx, log, &query.Runner{Backend: eng, Limits: f.limits.limits(), Gate: gate, Log: log}, scripts.NewLibrary())
	if err != nil {
		lis.Close()
		return err
	}
	defer stopOTel()
	gs := grpc.NewServer(opts...)
	agentpb.RegisterAgentServiceServer(gs, agent.New(agent.Config{Engine: eng, Hostname: node, ASID: asid, Log: log, Gate: gate}))
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(agentpb.AgentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, h)
	log.Info("pxq agent", "addr", lis.Addr().String(), "node", node, "asid", asid, "tracing", srcs.Tracing(), "metadata", meta.Mode())
	return serveUntilDone(ctx, log, gate, gs, lis, "", nil, nil, nil, &f.sec)
}
