// Package metrics serves the output tables of PxL scripts as Prometheus
// metrics. Each scrape runs the scripts; every numeric column of every
// output table becomes a gauge named pxq_<table>_<column>, one sample per
// row, labelled by the row's string and boolean columns, its integer
// columns that name rather than measure (resp_status, remote_port, pid…),
// and the script's name.
//
//	h := metrics.Handler([]metrics.Source{{Script: "px/http_request_stats", Run: run}}, metrics.Options{})
//	http.Handle("/metrics", h)
//
// Durations (px.DurationNanos) are exported in seconds with the suffix
// _seconds, as Prometheus' conventions ask; bytes get _bytes.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/types"
)

// RunFunc runs a script and returns its output tables. The engine's
// Collect with a fixed query is one: func(ctx) { return eng.Collect(ctx, q) }.
type RunFunc func(ctx context.Context) ([]*format.Table, error)

// Source is a script whose tables are exported.
type Source struct {
	// Script names the script; it is the value of the "script" label.
	Script string
	// Run runs it.
	Run RunFunc
}

// Options tune the handler.
type Options struct {
	// Timeout bounds one scrape's script runs (default 10 s).
	Timeout time.Duration
	// CacheFor reuses the last results for scrapes that come sooner than
	// this after a run (default 0: run on every scrape).
	CacheFor time.Duration
	// Prefix starts every metric name (default "pxq").
	Prefix string
}

// Handler returns an http.Handler for /metrics that runs sources on
// each scrape. A script that fails is reported in pxq_script_up (0) and
// its error in the log of the scrape, and the others are still served.
func Handler(sources []Source, o Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(sources, o))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Collector is a prometheus.Collector over scripts' output tables.
type Collector struct {
	sources []Source
	o       Options

	mu      sync.Mutex
	last    time.Time
	results [][]*format.Table
	errs    []error
}

// NewCollector returns a collector of sources' tables, to register in a
// registry of one's own.
func NewCollector(sources []Source, o Options) *Collector {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "pxq"
	}
	return &Collector{sources: sources, o: o}
}

// Describe sends nothing: the metrics depend on the scripts' output, so
// the collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect runs the scripts (or reuses recent results) and sends their
// rows as gauges.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	results, errs := c.run()
	up := prometheus.NewDesc(c.o.Prefix+"_script_up", "1 when the script ran at the last scrape, 0 when it failed", []string{"script"}, nil)
	for i, src := range c.sources {
		v := 1.0
		if errs[i] != nil {
			v = 0
			ch <- prometheus.NewInvalidMetric(prometheus.NewDesc(c.o.Prefix+"_script_error", "a script failed", []string{"script"}, nil),
				fmt.Errorf("script %s: %w", src.Script, errs[i]))
		}
		ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, v, src.Script)
		for _, t := range results[i] {
			for _, m := range Metrics(c.o.Prefix, src.Script, t) {
				ch <- m
			}
		}
	}
}

func (c *Collector) run() ([][]*format.Table, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.results != nil && c.o.CacheFor > 0 && time.Since(c.last) < c.o.CacheFor {
		return c.results, c.errs
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	c.results = make([][]*format.Table, len(c.sources))
	c.errs = make([]error, len(c.sources))
	for i, s := range c.sources {
		c.results[i], c.errs[i] = s.Run(ctx)
	}
	c.last = time.Now()
	return c.results, c.errs
}

// Metrics turns one output table into gauges: one per numeric column and
// row, labelled by the row's string, boolean and key columns and by
// script.
// Rows whose labels repeat an earlier row's are left out (Prometheus
// allows one sample per name and label set).
func Metrics(prefix, script string, t *format.Table) []prometheus.Metric {
	var labelCols, valueCols []int
	labels := []string{"script"}
	for i, col := range t.Relation {
		switch col.Type {
		case types.String, types.Boolean:
			labelCols = append(labelCols, i)
			labels = append(labels, Name(col.Name))
		case types.Int64:
			if isKey(col.Name) {
				labelCols = append(labelCols, i)
				labels = append(labels, Name(col.Name))
			} else {
				valueCols = append(valueCols, i)
			}
		case types.Float64:
			valueCols = append(valueCols, i)
		}
	}
	if len(valueCols) == 0 {
		return nil
	}
	descs := make([]*prometheus.Desc, len(valueCols))
	scale := make([]float64, len(valueCols))
	for k, i := range valueCols {
		col := t.Relation[i]
		name := prefix + "_" + Name(t.Name) + "_" + Name(col.Name)
		scale[k] = 1
		switch col.Semantic {
		case types.STDurationNS:
			name += "_seconds"
			scale[k] = 1e-9
		case types.STBytes:
			if !strings.HasSuffix(name, "_bytes") {
				name += "_bytes"
			}
		}
		help := fmt.Sprintf("column %s of table %s", col.Name, t.Name)
		if col.Desc != "" {
			help += ": " + col.Desc
		}
		descs[k] = prometheus.NewDesc(name, help, labels, nil)
	}
	var out []prometheus.Metric
	seen := map[string]bool{}
	for _, rec := range t.Records {
		for r := 0; r < int(rec.NumRows()); r++ {
			vals := []string{script}
			for _, i := range labelCols {
				vals = append(vals, labelValue(rec.Column(i), r))
			}
			key := strings.Join(vals, "\x00")
			if seen[key] {
				continue
			}
			seen[key] = true
			for k, i := range valueCols {
				col := rec.Column(i)
				if col.IsNull(r) {
					continue
				}
				var v float64
				switch x := format.Value(col, r).(type) {
				case int64:
					v = float64(x)
				case float64:
					v = x
				default:
					continue
				}
				out = append(out, prometheus.MustNewConstMetric(descs[k], prometheus.GaugeValue, v*scale[k], vals...))
			}
		}
	}
	return out
}

func labelValue(a arrow.Array, r int) string {
	if a.IsNull(r) {
		return ""
	}
	switch v := format.Value(a, r).(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	default:
		return fmt.Sprint(v)
	}
}

// isKey tells integer columns that name things rather than measure them
// (a status code, a port, a pid): they become labels.
func isKey(name string) bool {
	return name == "pid" || name == "trace_role" || strings.HasSuffix(name, "status") ||
		strings.HasSuffix(name, "_port") || strings.HasSuffix(name, "_code") || strings.HasSuffix(name, "rcode")
}

// Name turns s into a valid Prometheus metric or label name: letters,
// digits and underscores, not starting with a digit.
func Name(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}
