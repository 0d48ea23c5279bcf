package server_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pxq-dev/pxq/api/vizierpb"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/server"
)

// exportRecorder is a query.Exporter that keeps the sinks it opens and
// counts their rows.
type exportRecorder struct {
	mu    sync.Mutex
	sinks []query.ExportSink
	rows  int64
}

func (e *exportRecorder) Open(s query.ExportSink) (query.ExportWriter, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sinks = append(e.sinks, s)
	return e, nil
}

func (e *exportRecorder) Batch(rec arrow.Record) error {
	e.mu.Lock()
	e.rows += rec.NumRows()
	e.mu.Unlock()
	return nil
}

func (e *exportRecorder) Close(error) []string { return nil }

func vizierClient(t *testing.T, r *query.Runner) vizierpb.VizierServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := server.New(server.Config{Runner: r}).NewGRPCServer()
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vizierpb.NewVizierServiceClient(conn)
}

// TestGenerateOTelScript: the script GenerateOTelScript makes exports
// what the original displays; running it (ExecuteScript with Pixie's
// otel_endpoint_config and plugin_config) exports every displayed row
// to the configured endpoint, over the configured window.
func TestGenerateOTelScript(t *testing.T) {
	now := time.Now()
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, 2000, now)
	rec := &exportRecorder{}
	c := vizierClient(t, &query.Runner{Backend: eng, Exporter: rec})
	ctx := context.Background()
	src := `import px
df = px.DataFrame(table='http_events', start_time='-5m')
df.service = df.ctx['service']
df = df.groupby(['service', 'req_path']).agg(requests=('latency', px.count), time_=('time_', px.max))
px.display(df, 'http')
`
	resp, err := c.GenerateOTelScript(ctx, &vizierpb.GenerateOTelScriptRequest{PxlScript: src})
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("%v %v", err, resp.GetStatus())
	}
	gen := resp.GetOtelScript()
	for _, want := range []string{
		"px.DataFrame(table='http_events', start_time=px.plugin.start_time, end_time=px.plugin.end_time)",
		"px.display(df, 'http')\n",
		"otel_df = df\npx.export(otel_df, px.otel.Data(",
		"'service.name': otel_df.service,",
		"'http.req_path': otel_df.req_path,",
		"px.otel.metric.Gauge(name='http.requests', value=otel_df.requests),",
	} {
		if !strings.Contains(gen, want) {
			t.Errorf("generated script lacks %q:\n%s", want, gen)
		}
	}
	from, to := now.Add(-5*time.Minute), now
	stream, err := c.ExecuteScript(ctx, &vizierpb.ExecuteScriptRequest{QueryStr: gen, Configs: &vizierpb.Configs{
		OtelEndpointConfig: &vizierpb.Configs_OTelEndpointConfig{Url: "collector:4317", Headers: map[string]string{"k": "v"}, Insecure: true, Timeout: 7},
		PluginConfig:       &vizierpb.Configs_PluginConfig{StartTimeNs: from.UnixNano(), EndTimeNs: to.UnixNano()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var displayed int64
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetStatus().GetCode() != 0 {
			t.Fatalf("status %v", r.GetStatus())
		}
		displayed += r.GetData().GetBatch().GetNumRows()
	}
	if displayed == 0 || rec.rows != displayed || len(rec.sinks) != 1 {
		t.Fatalf("displayed %d rows, exported %d in %d sinks", displayed, rec.rows, len(rec.sinks))
	}
	s := rec.sinks[0]
	if e := s.Endpoint; e == nil || e.URL != "collector:4317" || e.Headers["k"] != "v" || !e.Insecure || e.Timeout != 7*time.Second {
		t.Errorf("endpoint %+v", s.Endpoint)
	}
	if !s.Start.Equal(time.Unix(0, from.UnixNano())) || !s.End.Equal(time.Unix(0, to.UnixNano())) {
		t.Errorf("window %v %v", s.Start, s.End)
	}
}

func TestGenerateOTelScriptErrors(t *testing.T) {
	c := vizierClient(t, &query.Runner{Backend: brokertest.NewEngine(t, brokertest.Meta{}, 1)})
	for src, want := range map[string]string{
		"import px\npx.display(px.DataFrame(table='http_events')[['req_path']], 'x')\n": "table \"x\": no INT64 or FLOAT64 column",
		"import px\ndf = px.DataFrame(table='http_events')\n":                           "the script displays nothing",
		"import px\npx.display(px.DataFrame(table='nope'), 'x')\n":                      "table \"nope\" not found",
	} {
		resp, err := c.GenerateOTelScript(context.Background(), &vizierpb.GenerateOTelScriptRequest{PxlScript: src})
		if err != nil {
			t.Fatal(err)
		}
		if st := resp.GetStatus(); st.GetCode() != int32(codes.InvalidArgument) || !strings.Contains(st.GetMessage(), want) || resp.GetOtelScript() != "" {
			t.Errorf("%q: %v, want %q", src, st, want)
		}
	}
	// A compile error carries its position.
	resp, _ := c.GenerateOTelScript(context.Background(), &vizierpb.GenerateOTelScriptRequest{PxlScript: "import px\npx.display(px.DataFrame(table='nope'), 'x')\n"})
	if ce := resp.GetStatus().GetErrorDetails(); len(ce) != 1 || ce[0].GetCompilerError().GetLine() != 2 {
		t.Errorf("error details %v", ce)
	}
}
