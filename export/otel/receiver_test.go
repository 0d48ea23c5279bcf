package otel_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP endpoint on 127.0.0.1 (gRPC or HTTP) that keeps
// what it is sent. It serves the OTLP protobuf services as the protocol
// defines them; the real Collector's tests are in test/otel.
type receiver struct {
	colmetricpb.UnimplementedMetricsServiceServer

	Addr string

	mu      sync.Mutex
	metrics []*metricpb.ResourceMetrics
	spans   []*tracepb.ResourceSpans
	calls   int
	changed chan struct{}
	// fail makes the next calls fail with UNAVAILABLE (gRPC) or 503.
	fail int
	// hold, when set, holds every call until it is closed.
	hold chan struct{}
	// entered receives a value when a call starts (when set).
	entered chan struct{}
}

func newReceiver() *receiver { return &receiver{changed: make(chan struct{}, 1)} }

// startGRPC serves OTLP/gRPC on lis (a new port when nil).
func (r *receiver) startGRPC(t testing.TB, lis net.Listener) {
	t.Helper()
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	r.Addr = lis.Addr().String()
	g := grpc.NewServer()
	colmetricpb.RegisterMetricsServiceServer(g, r)
	coltracepb.RegisterTraceServiceServer(g, traceServer{r: r})
	go g.Serve(lis)
	t.Cleanup(g.Stop)
}

// startHTTP serves OTLP/HTTP (protobuf bodies).
func (r *receiver) startHTTP(t testing.TB) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = lis.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, req *http.Request) {
		var m colmetricpb.ExportMetricsServiceRequest
		r.serveHTTP(w, req, &m, func() error { _, err := r.Export(req.Context(), &m); return err }, &colmetricpb.ExportMetricsServiceResponse{})
	})
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		var m coltracepb.ExportTraceServiceRequest
		r.serveHTTP(w, req, &m, func() error { _, err := r.exportTraces(req.Context(), &m); return err }, &coltracepb.ExportTraceServiceResponse{})
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(lis)
	t.Cleanup(func() { hs.Close() })
}

func (r *receiver) serveHTTP(w http.ResponseWriter, req *http.Request, m proto.Message, export func() error, resp proto.Message) {
	if req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	b, err := io.ReadAll(req.Body)
	if err == nil {
		err = proto.Unmarshal(b, m)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := export(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (r *receiver) enter(ctx context.Context) error {
	r.mu.Lock()
	hold, entered := r.hold, r.entered
	r.calls++
	fail := r.fail > 0
	if fail {
		r.fail--
	}
	r.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return status.Error(codes.Unavailable, "the test receiver is failing on purpose")
	}
	return nil
}

func (r *receiver) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	if err := r.enter(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.metrics = append(r.metrics, req.ResourceMetrics...)
	r.mu.Unlock()
	r.notify()
	return &colmetricpb.ExportMetricsServiceResponse{}, nil
}

// traceServer is the receiver's TraceService (its Export has the same
// name as MetricsService's).
type traceServer struct {
	coltracepb.UnimplementedTraceServiceServer
	r *receiver
}

func (t traceServer) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return t.r.exportTraces(ctx, req)
}

func (r *receiver) exportTraces(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if err := r.enter(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.spans = append(r.spans, req.ResourceSpans...)
	r.mu.Unlock()
	r.notify()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// wait returns what the receiver holds once cond holds, or fails the
// test after a minute.
func (r *receiver) wait(t *testing.T, what string, cond func(points, spans int) bool) ([]*metricpb.ResourceMetrics, []*tracepb.ResourceSpans) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		r.mu.Lock()
		ms, ss := append([]*metricpb.ResourceMetrics(nil), r.metrics...), append([]*tracepb.ResourceSpans(nil), r.spans...)
		r.mu.Unlock()
		if cond(countPoints(ms), countSpans(ss)) {
			return ms, ss
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("waiting for %s: have %d points and %d spans", what, countPoints(ms), countSpans(ss))
		}
	}
}

func countPoints(rms []*metricpb.ResourceMetrics) int {
	n := 0
	for _, rm := range rms {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case *metricpb.Metric_Gauge:
					n += len(d.Gauge.DataPoints)
				case *metricpb.Metric_Summary:
					n += len(d.Summary.DataPoints)
				case *metricpb.Metric_Histogram:
					n += len(d.Histogram.DataPoints)
				}
			}
		}
	}
	return n
}

func countSpans(rss []*tracepb.ResourceSpans) int {
	n := 0
	for _, rs := range rss {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}
