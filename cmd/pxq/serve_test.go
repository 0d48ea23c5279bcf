package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/vizierpb"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/client"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/table"
)

// writeEvents writes n generated http_events rows, with times in the 5
// minutes before now, to an Arrow file and returns its path.
func writeEvents(t *testing.T, n int) string {
	t.Helper()
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, n, time.Now())
	tb := eng.Store().Table("http_events")
	var recs []arrow.Record
	for _, b := range tb.Snapshot(0, 1<<62) {
		recs = append(recs, b.Record)
	}
	path := filepath.Join(t.TempDir(), "http_events.arrow")
	if err := table.WriteFile(path, tb.Relation(), recs); err != nil {
		t.Fatal(err)
	}
	return path
}

// fanOut joins 50,000 rows on a key of 16 values twice: some 5e11 rows
// to count, hours of work in small memory.
const fanOut = `
import px
df = px.DataFrame(table='http_events', start_time='-30m')
a = df[['req_path', 'latency']]
j = a.merge(a, how='inner', left_on='req_path', right_on='req_path', suffixes=['', '_r'])
k = j.merge(a, how='inner', left_on='req_path', right_on='req_path', suffixes=['', '_s'])
px.display(k.agg(n=('latency', px.count)), 'n')
`

// normal is a query that answers at once.
const normal = `
import px
df = px.DataFrame(table='http_events', start_time='-30m')
px.display(df.groupby('req_path').agg(n=('latency', px.count)), 'paths')
`

// startServe runs pxq serve over n generated rows with extra flags and
// returns the process and its gRPC address.
func startServe(t *testing.T, rows int, flags ...string) (*exec.Cmd, string) {
	t.Helper()
	args := append([]string{"serve", "--table", "http_events=" + writeEvents(t, rows), "--listen", "127.0.0.1:0", "--http", ""}, flags...)
	cmd := exec.Command(pxqBinary(t), args...)
	addr := startAnnounced(t, cmd, `gRPC API" addr=(\S+)`)
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, addr
}

// waitExit waits at most d for cmd to end and returns how long it took.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("pxq %s did not exit within %v", cmd.Args[1], d)
		return 0, nil
	}
}

func dialPixie(t *testing.T, addr string) vizierpb.VizierServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vizierpb.NewVizierServiceClient(conn)
}

// runPixie runs a script over Pixie's API and returns the rows received
// and the in-stream or gRPC error.
func runPixie(ctx context.Context, c vizierpb.VizierServiceClient, pxl string) (int64, error) {
	s, err := c.ExecuteScript(ctx, &vizierpb.ExecuteScriptRequest{QueryStr: pxl})
	if err != nil {
		return 0, err
	}
	var rows int64
	for {
		r, err := s.Recv()
		if err != nil {
			return rows, err
		}
		if st := r.GetStatus(); st.GetCode() != 0 {
			return rows, status.Error(codes.Code(st.GetCode()), st.GetMessage())
		}
		rows += r.GetData().GetBatch().GetNumRows()
		if r.GetData().GetExecutionStats() != nil {
			return rows, nil
		}
	}
}

// TestServeStopsOnSIGTERM: SIGTERM during a query of hours cancels it,
// and pxq serve exits within 5 s; the client learns why.
func TestServeStopsOnSIGTERM(t *testing.T) {
	cmd, addr := startServe(t, 50000, "--query-timeout", "1h")
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Execute(context.Background(), client.Query{PxL: fanOut})
		errc <- err
	}()
	time.Sleep(time.Second) // the query runs
	select {
	case err := <-errc:
		t.Fatalf("the long query ended before the signal: %v", err)
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	took, err := waitExit(t, cmd, 5*time.Second)
	t.Logf("pxq serve exited %v after SIGTERM: %v", took, err)
	if err != nil {
		t.Errorf("exit: %v", err)
	}
	if err := <-errc; status.Code(errors.Unwrap(err)) != codes.Unavailable {
		t.Errorf("the client got %v, want UNAVAILABLE", err)
	}
}

// TestServeSecondSignalExitsAtOnce: a stream the server would wait for
// (Pixie's HealthCheck) holds the graceful stop; a second SIGTERM does
// not wait.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	cmd, addr := startServe(t, 10)
	hc, err := dialPixie(t, addr).HealthCheck(context.Background(), &vizierpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Recv(); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	took, err := waitExit(t, cmd, 5*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) || took > time.Second {
		t.Fatalf("exited after %v with %v, want exit code %d within 1s", took, err, 128+int(syscall.SIGTERM))
	}
}

// TestServeAdmission: pxq serve runs at most --max-concurrent-queries;
// past it a query is refused at once as "server busy" over both APIs,
// and while heavy queries run a normal one still answers promptly.
func TestServeAdmission(t *testing.T) {
	_, addr := startServe(t, 50000, "--max-concurrent-queries", "3", "--query-timeout", "1m")
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pixie := dialPixie(t, addr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	hogs := make([]context.CancelFunc, 3)
	for i := range hogs {
		hctx, hcancel := context.WithCancel(ctx)
		hogs[i] = hcancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Execute(hctx, client.Query{PxL: fanOut})
		}()
	}
	defer wg.Wait()
	defer cancel()
	time.Sleep(time.Second) // the three run

	if _, err := c.Execute(ctx, client.Query{PxL: normal}); status.Code(errors.Unwrap(err)) != codes.ResourceExhausted || !strings.Contains(err.Error(), "server busy") {
		t.Fatalf("a fourth query over pxq's API: %v", err)
	}
	if _, err := runPixie(ctx, pixie, normal); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "server busy") {
		t.Fatalf("a fourth query over Pixie's API: %v", err)
	}

	// One slot frees; two heavy queries keep both cores busy.
	hogs[0]()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	res, err := c.Execute(ctx, client.Query{PxL: normal})
	if err != nil || len(res.Tables) != 1 || res.Tables[0].Rows() != int64(len(brokertest.Paths)) {
		t.Fatalf("normal query over pxq's API: %v", err)
	}
	took := time.Since(start)
	start = time.Now()
	rows, err := runPixie(ctx, pixie, normal)
	if err != nil || rows != int64(len(brokertest.Paths)) {
		t.Fatalf("normal query over Pixie's API: %d rows, %v", rows, err)
	}
	t.Logf("beside two heavy queries a normal one answers in %v (pxq's API), %v (Pixie's)", took, time.Since(start))
	if took > 3*time.Second || time.Since(start) > 3*time.Second {
		t.Errorf("the normal query took too long")
	}
}

// TestServeTracesBesideHeavyQueries: while two queries of hours keep
// both cores busy, pxq serve's tracer still records every request made
// on this host.
func TestServeTracesBesideHeavyQueries(t *testing.T) {
	testenv.RequireRoot(t, "trace with eBPF")
	cmd := exec.Command(pxqBinary(t), "serve", "--listen", "127.0.0.1:0", "--http", "", "--query-timeout", "5m")
	addr := startAnnounced(t, cmd, `gRPC API" addr=(\S+)`)
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, port := ebpftest.HTTPServer(t)
	hc := ebpftest.HTTPClient()
	send := func(path string, n int) time.Duration {
		start := time.Now()
		for range n {
			resp, err := hc.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return time.Since(start)
	}
	// traced counts the server-side rows of path, once the count stops
	// growing (the tracer flushes every 100 ms).
	traced := func(path string) int64 {
		src := fmt.Sprintf("import px\ndf = px.DataFrame(table='http_events', start_time='-10m')\n"+
			"df = df[df.local_port == %d and df.trace_role == 2 and df.req_path == '%s']\npx.display(df.agg(n=('latency', px.count)), 'n')\n", port, path)
		last := int64(-1)
		for range 30 {
			res, err := c.Execute(context.Background(), client.Query{PxL: src})
			if err != nil {
				t.Fatal(err)
			}
			n := res.Tables[0].Records[0].Column(0).(*array.Int64).Value(0)
			if n > 0 && n == last {
				return n
			}
			last = n
			time.Sleep(300 * time.Millisecond)
		}
		return last
	}

	// Rows for the heavy queries to join: one path, so every row meets
	// every other.
	const n = 20000
	idle := send("/hello", n)
	base := traced("/hello")
	ctx, cancel := context.WithCancel(context.Background())
	hogs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Execute(ctx, client.Query{PxL: strings.ReplaceAll(fanOut, "-30m", "-10m")})
			hogs <- err
		}()
	}
	time.Sleep(time.Second)
	busy := send("/echo", n)
	cancel()
	for range 2 {
		// Still running when cancelled: they were heavy all along.
		if err := <-hogs; status.Code(errors.Unwrap(err)) != codes.Canceled {
			t.Errorf("a heavy query ended with %v, want CANCELED", err)
		}
	}
	got := traced("/echo")
	t.Logf("idle: %d of %d requests traced (%v to send); beside two heavy queries: %d of %d (%v)", base, n, idle, got, n, busy)
	if base != n || got != n {
		t.Errorf("the tracer lost requests: %d of %d idle, %d of %d beside the heavy queries", base, n, got, n)
	}
}

// TestAgentAndBrokerStopOnSIGTERM: pxq agent and pxq broker, with a
// HealthCheck stream open on the broker, exit within 5 s of SIGTERM.
func TestAgentAndBrokerStopOnSIGTERM(t *testing.T) {
	agentCmd := exec.Command(pxqBinary(t), "agent", "--listen", "127.0.0.1:0", "--kubeconfig", "")
	agentAddr := startAnnounced(t, agentCmd, `pxq agent" addr=(\S+)`)
	defer func() {
		agentCmd.Process.Kill()
		agentCmd.Wait()
	}()
	brokerCmd := exec.Command(pxqBinary(t), "broker", "--agents", agentAddr, "--listen", "127.0.0.1:0", "--http", "")
	brokerAddr := startAnnounced(t, brokerCmd, `gRPC API" addr=(\S+)`)
	defer func() {
		brokerCmd.Process.Kill()
		brokerCmd.Wait()
	}()
	c, err := client.Dial(brokerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Execute(context.Background(), client.Query{PxL: "import px\npx.display(px.GetAgentStatus(), 'agents')\n"})
	if err != nil || len(res.Tables) != 1 || res.Tables[0].Rows() != 1 {
		t.Fatalf("a query through the broker: %v", err)
	}
	hc, err := dialPixie(t, brokerAddr).HealthCheck(context.Background(), &vizierpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Recv(); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*exec.Cmd{brokerCmd, agentCmd} {
		cmd.Process.Signal(syscall.SIGTERM)
		took, err := waitExit(t, cmd, 5*time.Second)
		t.Logf("pxq %s exited %v after SIGTERM: %v", cmd.Args[1], took, err)
		if err != nil {
			t.Errorf("pxq %s: %v", cmd.Args[1], err)
		}
	}
}
