package otel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// job is one request to a collector: the metrics of one resource, or a
// run of spans.
type job struct {
	metrics *metricdata.ResourceMetrics
	spans   []sdktrace.ReadOnlySpan
	items   int // points or spans
}

// sender sends the jobs for one target, one at a time, from a queue of
// bounded size. Enqueueing never waits: a job that does not fit is
// dropped and counted. A job that fails is retried with exponential
// backoff until it succeeds, fails for good (the collector rejects it)
// or has been tried for Config.RetryFor.
type sender struct {
	t target
	e *Exporter

	mu    sync.Mutex
	jobs  []job         // first in, first out
	ready chan struct{} // a job was queued
	// queued counts the items waiting or being sent, which
	// Config.QueueItems bounds.
	queued atomic.Int64

	metrics sdkmetric.Exporter
	traces  sdktrace.SpanExporter

	stop    chan struct{}
	flush   context.Context // set before stop is closed
	stopped chan struct{}
	once    sync.Once
	failing bool // the last attempt failed (worker only)
}

func newSender(e *Exporter, t target) *sender {
	s := &sender{t: t, e: e, ready: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.run()
	return s
}

// enqueue queues j, or drops it when the queue is full.
func (s *sender) enqueue(j job) bool {
	if j.items == 0 {
		return true
	}
	if s.queued.Add(int64(j.items)) > int64(s.e.cfg.QueueItems) {
		s.queued.Add(-int64(j.items))
		s.e.stats.dropped.Add(int64(j.items))
		return false
	}
	s.mu.Lock()
	s.jobs = append(s.jobs, j)
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return true
}

// next takes the first job queued.
func (s *sender) next() (job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.jobs) == 0 {
		return job{}, false
	}
	j := s.jobs[0]
	s.jobs[0] = job{}
	s.jobs = s.jobs[1:]
	return j, true
}

func (s *sender) run() {
	defer close(s.stopped)
	for {
		if j, ok := s.next(); ok {
			s.deliver(j)
			select {
			case <-s.stop:
				s.drain()
				s.shutdown()
				return
			default:
			}
			continue
		}
		select {
		case <-s.ready:
		case <-s.stop:
			s.drain()
			s.shutdown()
			return
		}
	}
}

// deliver sends j, retrying failures with backoff.
func (s *sender) deliver(j job) {
	defer s.queued.Add(-int64(j.items))
	cfg := &s.e.cfg
	first := time.Now()
	wait := cfg.Backoff
	for {
		err := s.attempt(context.Background(), j)
		if err == nil {
			return
		}
		if permanent(err) || time.Since(first)+wait > cfg.RetryFor {
			s.e.stats.dropped.Add(int64(j.items))
			s.e.log.Warn("otel export: giving up a request", "endpoint", s.t.String(), "items", j.items, "err", err)
			return
		}
		s.e.stats.retries.Add(1)
		// Full jitter keeps agents that lost one collector from all
		// coming back at once.
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			// Closing: one last try within the flush deadline.
			if s.attempt(s.flush, j) != nil {
				s.e.stats.dropped.Add(int64(j.items))
			}
			return
		}
		wait = min(2*wait, cfg.MaxBackoff)
	}
}

// attempt sends j once, within the target's timeout, and counts it.
func (s *sender) attempt(parent context.Context, j job) error {
	ctx, cancel := context.WithTimeout(parent, s.t.timeout)
	defer cancel()
	err := s.send(ctx, j)
	st := &s.e.stats
	if err != nil {
		st.failures.Add(1)
		st.setError(err)
		if !s.failing {
			s.e.log.Warn("otel export failed; retrying with backoff", "endpoint", s.t.String(), "err", err)
		}
		s.failing = true
		return err
	}
	if s.failing {
		s.e.log.Info("otel export recovered", "endpoint", s.t.String())
		s.failing = false
	}
	st.requests.Add(1)
	if j.metrics != nil {
		st.points.Add(int64(j.items))
	} else {
		st.spans.Add(int64(j.items))
	}
	return nil
}

func (s *sender) send(ctx context.Context, j job) error {
	var err error
	if j.metrics != nil {
		if s.metrics == nil {
			if s.metrics, err = s.t.metricExporter(ctx); err != nil {
				return fmt.Errorf("metric exporter for %s: %w", s.t, err)
			}
		}
		return s.metrics.Export(ctx, j.metrics)
	}
	if s.traces == nil {
		if s.traces, err = s.t.traceExporter(ctx); err != nil {
			return fmt.Errorf("trace exporter for %s: %w", s.t, err)
		}
	}
	return s.traces.ExportSpans(ctx, j.spans)
}

// drain sends what is queued, each once, while the flush deadline lasts.
func (s *sender) drain() {
	for {
		j, ok := s.next()
		if !ok {
			return
		}
		if s.flush.Err() != nil || s.attempt(s.flush, j) != nil {
			s.e.stats.dropped.Add(int64(j.items))
		}
		s.queued.Add(-int64(j.items))
	}
}

func (s *sender) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.metrics != nil {
		_ = s.metrics.Shutdown(ctx)
	}
	if s.traces != nil {
		_ = s.traces.Shutdown(ctx)
	}
}

// close stops the worker after it sent what it can before ctx ends.
func (s *sender) close(ctx context.Context) {
	s.once.Do(func() {
		s.flush = ctx
		close(s.stop)
	})
	// An attempt in flight ends within the target's timeout; the next
	// sees that ctx ended.
	<-s.stopped
}

// permanent tells errors that sending again cannot fix: the collector
// refused the data or the call.
func permanent(err error) bool {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		switch se.GRPCStatus().Code() {
		case codes.InvalidArgument, codes.Unimplemented, codes.PermissionDenied, codes.Unauthenticated, codes.NotFound:
			return true
		}
	}
	return false
}
