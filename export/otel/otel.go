// Package otel sends the rows of PxL export sinks (px.export(df,
// px.otel.Data(…))) to OpenTelemetry collectors over OTLP/gRPC or
// OTLP/HTTP, with the OpenTelemetry Go SDK's exporters. It also runs
// export scripts on a schedule (Schedule) and turns a script that
// displays tables into one that exports them (Generate).
//
// An Exporter is a query.Exporter: the query path hands it each export
// sink's batches as the query makes them. It converts rows to the SDK's
// metric data and spans at once, on the query's goroutine, and queues
// them for the endpoint's sender; the network is never waited on by a
// query. A sender sends one request at a time, retries failures with
// exponential backoff, and drops (and counts) what does not fit in its
// queue or cannot be sent for Config.RetryFor.
//
//	e := otel.New(otel.Config{Endpoint: &plan.OTelEndpoint{URL: "grpc://127.0.0.1:4317"}})
//	defer e.Close(ctx)
//	runner := &query.Runner{Backend: eng, Exporter: e}
package otel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
)

// Defaults of Config's zero fields.
const (
	DefaultTimeout    = 5 * time.Second // Pixie's px.otel.Endpoint default
	DefaultQueueItems = 200_000
	DefaultMaxSpans   = 100_000
	DefaultRetryFor   = time.Minute
	DefaultBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff = 15 * time.Second
	// maxItemsPerRequest bounds the points or spans of one request,
	// which keeps requests well under gRPC's 4 MiB default.
	maxItemsPerRequest = 2000
	// maxSenders bounds the endpoints one Exporter talks to (scripts
	// name their own).
	maxSenders = 32
)

// Config configures an Exporter.
type Config struct {
	// Endpoint is the collector of exports whose script and request
	// name none (--otel-endpoint); nil: such exports fail.
	Endpoint *plan.OTelEndpoint
	// Version is reported as the instrumentation scope's version (the
	// scope is "pxq").
	Version string
	// Timeout bounds one attempt to send, for endpoints that set none.
	Timeout time.Duration
	// QueueItems bounds the points and spans waiting per endpoint.
	QueueItems int
	// MaxSpans bounds the spans of one export of one query: spans that
	// pair clients with servers wait for the query's last row.
	MaxSpans int
	// RetryFor is how long a request is retried before it is dropped;
	// Backoff the first wait between attempts, doubling up to
	// MaxBackoff.
	RetryFor, Backoff, MaxBackoff time.Duration
	// Log receives failures and recoveries; none when nil.
	Log *slog.Logger
}

// Exporter sends export sinks' rows to their collectors.
type Exporter struct {
	cfg   Config
	log   *slog.Logger
	scope instrumentation.Scope
	stats counters

	mu      sync.Mutex
	senders map[string]*sender
	closed  bool
}

var _ query.Exporter = (*Exporter)(nil)

// New returns an Exporter. Close it to flush what is queued.
func New(cfg Config) *Exporter {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.RetryFor, DefaultRetryFor)
	def(&cfg.Backoff, DefaultBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	if cfg.QueueItems <= 0 {
		cfg.QueueItems = DefaultQueueItems
	}
	if cfg.MaxSpans <= 0 {
		cfg.MaxSpans = DefaultMaxSpans
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Exporter{cfg: cfg, log: log, scope: instrumentation.Scope{Name: "pxq", Version: cfg.Version}, senders: map[string]*sender{}}
}

// Stats are an Exporter's counters since it was made.
type Stats struct {
	// Points and Spans were sent (the collector accepted them), in
	// Requests requests.
	Points, Spans, Requests int64
	// Failures counts attempts that failed; Retries the attempts made
	// again after one; Dropped the points and spans given up: the queue
	// was full, the collector refused them, or they failed for RetryFor.
	Failures, Retries, Dropped int64
	// Queued are the points and spans waiting now.
	Queued int64
	// LastError is the last failure's error.
	LastError string
}

type counters struct {
	points, spans, requests, failures, retries, dropped atomic.Int64
	mu                                                  sync.Mutex
	last                                                string
}

func (c *counters) setError(err error) {
	c.mu.Lock()
	c.last = err.Error()
	c.mu.Unlock()
}

// Stats returns the exporter's counters.
func (e *Exporter) Stats() Stats {
	s := Stats{Points: e.stats.points.Load(), Spans: e.stats.spans.Load(), Requests: e.stats.requests.Load(),
		Failures: e.stats.failures.Load(), Retries: e.stats.retries.Load(), Dropped: e.stats.dropped.Load()}
	e.stats.mu.Lock()
	s.LastError = e.stats.last
	e.stats.mu.Unlock()
	e.mu.Lock()
	for _, snd := range e.senders {
		s.Queued += snd.queued.Load()
	}
	e.mu.Unlock()
	return s
}

// Close sends what is queued, each request once, until ctx ends, then
// stops. Exports opened afterwards fail.
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	senders := e.senders
	e.mu.Unlock()
	for _, s := range senders {
		s.close(ctx)
	}
	return nil
}

// errClosed is the error of an export opened on a closed Exporter.
var errClosed = errors.New("the exporter is closed")

// sender returns the sender of endpoint ep, started on first use.
func (e *Exporter) sender(ep *plan.OTelEndpoint) (*sender, error) {
	t, err := parseTarget(ep, e.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClosed
	}
	k := t.key()
	if s := e.senders[k]; s != nil {
		return s, nil
	}
	if len(e.senders) >= maxSenders {
		return nil, fmt.Errorf("more than %d endpoints: pxq talks to at most %d collectors", maxSenders, maxSenders)
	}
	s := newSender(e, t)
	e.senders[k] = s
	return s, nil
}

// Open starts one export sink of a query (query.Exporter).
func (e *Exporter) Open(s query.ExportSink) (query.ExportWriter, error) {
	x := s.Sink.OTel
	if x == nil {
		return nil, fmt.Errorf("sink %q exports nothing", s.Sink.Name)
	}
	ep := x.Endpoint
	if ep == nil {
		ep = s.Endpoint
	}
	if ep == nil {
		ep = e.cfg.Endpoint
	}
	if ep == nil {
		return nil, errors.New("no collector to send to: give px.otel.Data an endpoint=px.otel.Endpoint(url=…), or start pxq with --otel-endpoint")
	}
	snd, err := e.sender(ep)
	if err != nil {
		return nil, err
	}
	c := cols{rel: s.Sink.Relation()}
	rattrs, err := c.attrs(x.Resource)
	if err != nil {
		return nil, err
	}
	w := &writer{e: e, s: snd, name: s.Sink.Name, res: newResources(rattrs), now: s.Now, start: s.Start, ids: newIDs()}
	if w.now.IsZero() {
		w.now = time.Now()
	}
	for _, m := range x.Metrics {
		mm, err := newMetricMap(c, m)
		if err != nil {
			return nil, err
		}
		w.batch.metrics = append(w.batch.metrics, mm)
	}
	for _, sp := range x.Spans {
		sm, err := newSpanMap(c, sp)
		if err != nil {
			return nil, err
		}
		w.spans = append(w.spans, sm)
	}
	return w, nil
}

// writer converts one export sink's batches and queues them.
type writer struct {
	e     *Exporter
	s     *sender
	name  string
	res   *resources
	batch metricBatch
	spans []*spanMap
	ids   *ids
	// now is the time of points whose rows have no time; start the
	// start of delta points (the px.plugin window's), if known.
	now, start time.Time

	pending                   []sdktrace.ReadOnlySpan // spans ready to send
	paired                    []*span                 // spans waiting for the last row, to pair
	skipped, dropped, overCap int64
	pairs                     int
	kv                        []attribute.KeyValue
	resIdx                    []int
}

func (w *writer) Batch(rec arrow.Record) error {
	rows := int(rec.NumRows())
	for r := 0; r < rows; r++ {
		w.resIdx = w.res.of(w.resIdx[:0], rec, r)
		for i, m := range w.batch.metrics {
			for _, ri := range w.resIdx {
				if m.point(w.batch.add(ri, i), rec, r, w.now, w.start, w.kv) {
					w.batch.points++
				} else {
					w.skipped++
				}
			}
		}
		if w.batch.points >= maxItemsPerRequest {
			w.flushMetrics()
		}
		for _, m := range w.spans {
			// A span is one request: a row behind several services gives
			// it to the first.
			sp := m.row(rec, r, w.res.list[w.resIdx[0]], w.e.scope, w.ids)
			if !m.pairs() {
				w.pending = append(w.pending, sp)
				if len(w.pending) >= maxItemsPerRequest {
					w.flushSpans()
				}
				continue
			}
			if len(w.paired) >= w.e.cfg.MaxSpans {
				w.overCap++
				continue
			}
			w.paired = append(w.paired, sp)
		}
	}
	w.flushMetrics()
	w.flushSpans()
	return nil
}

func (w *writer) flushMetrics() {
	for _, j := range w.batch.resourceMetrics(w.res, w.e.scope) {
		if !w.s.enqueue(j) {
			w.dropped += int64(j.items)
		}
	}
}

func (w *writer) flushSpans() {
	for len(w.pending) > 0 {
		n := min(len(w.pending), maxItemsPerRequest)
		j := job{spans: w.pending[:n:n], items: n}
		if !w.s.enqueue(j) {
			w.dropped += int64(n)
		}
		w.pending = w.pending[n:]
	}
	w.pending = nil
}

// Close pairs and queues the spans that waited for the last row (of a
// query that completed) and reports what was left out.
func (w *writer) Close(err error) []string {
	if len(w.paired) > 0 && err == nil {
		w.pairs = pairSpans(w.paired)
		for _, s := range w.paired {
			w.pending = append(w.pending, s)
		}
		w.flushSpans()
	}
	w.paired = nil
	var warns []string
	if w.skipped > 0 {
		warns = append(warns, fmt.Sprintf("export %s: %d rows made no data point (a histogram's counts were negative or did not add up, or its quantiles were not px.quantiles')", w.name, w.skipped))
	}
	if w.overCap > 0 {
		warns = append(warns, fmt.Sprintf("export %s: %d spans past the %d one query may pair were left out", w.name, w.overCap, w.e.cfg.MaxSpans))
	}
	if w.dropped > 0 {
		warns = append(warns, fmt.Sprintf("export %s: %d points or spans dropped: the queue to %s is full (the collector is down or slow)", w.name, w.dropped, w.s.t))
	}
	return warns
}
