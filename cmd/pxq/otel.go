package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/export/otel"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
)

// otelFlags configure OpenTelemetry export: the default collector, and
// scripts run on a schedule to export.
type otelFlags struct {
	endpoint string
	headers  []string
	scripts  []string
	interval time.Duration
}

func (o *otelFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&o.endpoint, "otel-endpoint", "", "OpenTelemetry collector of px.export calls that name none: http://host:4318 (OTLP/HTTP), grpc://host:4317 (OTLP/gRPC), https:// or grpcs:// for TLS")
	f.StringArrayVar(&o.headers, "otel-header", nil, "a header sent to the collector: --otel-header 'authorization=Bearer x' (repeatable)")
	f.StringArrayVar(&o.scripts, "otel-script", nil, "run this script every --otel-interval and export its rows (repeatable; a script without px.export exports what it displays)")
	f.DurationVar(&o.interval, "otel-interval", otel.DefaultInterval, "how often --otel-script scripts run; each covers the rows since its last run")
}

// start gives runner an exporter and runs the --otel-script scripts on
// it until ctx ends; stop flushes what is queued.
func (o *otelFlags) start(ctx context.Context, log *slog.Logger, runner *query.Runner, lib *scripts.Library) (stop func(), err error) {
	cfg := otel.Config{Version: engine.Version, Log: log}
	if o.endpoint != "" {
		cfg.Endpoint = &plan.OTelEndpoint{URL: o.endpoint}
		for _, h := range o.headers {
			k, v, ok := strings.Cut(h, "=")
			if !ok || k == "" {
				return nil, usagef("--otel-header %q: want name=value", h)
			}
			if cfg.Endpoint.Headers == nil {
				cfg.Endpoint.Headers = map[string]string{}
			}
			cfg.Endpoint.Headers[k] = v
		}
		if err := otel.CheckEndpoint(cfg.Endpoint); err != nil {
			return nil, usageError{fmt.Errorf("--otel-endpoint: %w", err)}
		}
	}
	var list []*scripts.Script
	for _, n := range o.scripts {
		s, err := lib.Load(n)
		if err != nil {
			return nil, usageError{fmt.Errorf("--otel-script: %w", err)}
		}
		list = append(list, s)
	}
	if o.interval <= 0 {
		return nil, usagef("--otel-interval must be positive")
	}
	exp := otel.New(cfg)
	runner.Exporter = exp
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	close(done)
	if len(list) > 0 {
		sch := &otel.Schedule{Runner: runner, Scripts: list, Interval: o.interval, Lag: otel.DefaultLag, Now: runner.Now, Log: log}
		if runner.Now != nil {
			sch.Lag = 0 // a capture's clock stands still
		}
		done = make(chan struct{})
		go func() { defer close(done); sch.Run(sctx) }()
		log.Info("otel export", "endpoint", o.endpoint, "scripts", o.scripts, "interval", o.interval)
	}
	return func() {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer fcancel()
		exp.Close(fctx)
		if st := exp.Stats(); st.Requests+st.Failures > 0 {
			log.Info("otel export: stopped", "points", st.Points, "spans", st.Spans, "failures", st.Failures, "dropped", st.Dropped)
		}
	}, nil
}
