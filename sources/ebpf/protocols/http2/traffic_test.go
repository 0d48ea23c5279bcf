package http2_test

// Real traffic traced by the socket tracer: grpc-go's server and client
// (in this process), curl with prior knowledge, and nghttp2's server and
// h2load, on 127.0.0.1, in h2c and in TLS.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/pxq-dev/pxq/internal/testcert"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/all"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http2"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

type row = map[string]any

func TestMain(m *testing.M) {
	if os.Getenv("PXQ_GRPC_LOAD") == "1" {
		grpcLoad()
		return
	}
	os.Exit(m.Run())
}

func portOf(t testing.TB, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestTraceGRPC traces grpc-go's client and server: each call (unary,
// failing, unimplemented, streaming three ways) is one row, the
// server's, as sent; none is the client's.
func TestTraceGRPC(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{})
	addr := http2.StartGRPCServer(t)
	c, cc := http2.GRPCClient(t, addr)
	checkGRPCServerRows(t, tr, store, addr, cc, http2.GRPCCalls(t, c), http2.CheckGRPCRow)
}

// TestTraceGRPCTLS traces grpc-go over TLS (Go's crypto/tls, through
// the Go TLS probes on this test's own binary): each call is one row of
// the server, decrypted, with encrypted = true; the ciphertext is not
// parsed and the client's side is left out.
func TestTraceGRPCTLS(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{StatsPeriod: 100 * time.Millisecond})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	probed := ebpftest.WaitRows(t, store, "probe_status", 1, 10*time.Second, func(r row) bool {
		return r["tracepoint"] == "uprobe:"+exe && r["status"] == int64(0) && strings.Contains(r["info"].(string), `"go-uprobe"`)
	})
	if len(probed) == 0 {
		t.Fatalf("this test's binary %s was not probed: %v", exe, ebpftest.Rows(t, store, "probe_status"))
	}
	addr, cfg := http2.StartGRPCServerTLS(t)
	c, cc := http2.GRPCClientTLS(t, addr, cfg)
	checkGRPCServerRows(t, tr, store, addr, cc, http2.GRPCCalls(t, c), http2.CheckGRPCRowTLS)
}

// checkGRPCServerRows checks that each call made to the server at addr
// (in this process) is one server row, as check says, and that nothing
// else is a row once the client's connection cc is closed.
func checkGRPCServerRows(t *testing.T, tr *ebpf.Tracer, store *table.Store, addr string, cc *grpc.ClientConn,
	calls []http2.Call, check func(testing.TB, row, http2.Call)) {
	t.Helper()
	port := portOf(t, addr)
	got := ebpftest.WaitRows(t, store, "http_events", len(calls), 5*time.Second, ebpftest.ServerRow(port))
	if len(got) != len(calls) {
		t.Fatalf("%d server rows, want %d (counters %v)", len(got), len(calls), tr.Stats().Counters)
	}
	for i, call := range calls {
		check(t, got[i], call)
		if u := got[i]["upid"].(types.UInt128Value); int(u.PID()) != os.Getpid() {
			t.Errorf("upid %v", u)
		}
	}
	cc.Close()
	time.Sleep(300 * time.Millisecond)
	if n := len(ebpftest.Rows(t, store, "http_events")) - len(got); n != 0 {
		t.Errorf("%d rows besides the server's: %v", n, ebpftest.Rows(t, store, "http_events"))
	}
}

// TestTraceGRPCBothSides records the client's side too.
func TestTraceGRPCBothSides(t *testing.T) {
	_, store := ebpftest.Tracer(t, ebpf.Config{AllClientSides: true})
	addr := http2.StartGRPCServer(t)
	c, _ := http2.GRPCClient(t, addr)
	calls := http2.GRPCCalls(t, c)
	port := portOf(t, addr)
	for _, keep := range []func(row) bool{ebpftest.ServerRow(port), ebpftest.ClientRow(port)} {
		got := ebpftest.WaitRows(t, store, "http_events", len(calls), 5*time.Second, keep)
		if len(got) != len(calls) {
			t.Fatalf("%d rows, want %d", len(got), len(calls))
		}
		for i, call := range calls {
			http2.CheckGRPCRow(t, got[i], call)
		}
	}
}

// TestTraceCurl traces curl (with prior knowledge) and Go's h2c server in
// this process: both sides' rows.
func TestTraceCurl(t *testing.T) {
	u := http2.StartH2CServer(t)
	port := portOf(t, strings.TrimPrefix(u, "http://"))
	curl := dbtest.Hold(t, nil, "", dbtest.Need(t, "curl"), "-sS", "--http2-prior-knowledge", "-d", "hello body", u+"/echo?from=curl")
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(os.Getpid()), uint32(curl.Pid)}, AllClientSides: true})
	if out, err := curl.Run(); err != nil || out != "got 10 bytes" {
		t.Fatalf("curl: %v %q", err, out)
	}
	for _, side := range []struct {
		keep func(row) bool
		pid  int
	}{{ebpftest.ServerRow(port), os.Getpid()}, {ebpftest.ClientRow(port), curl.Pid}} {
		got := ebpftest.WaitRows(t, store, "http_events", 1, 5*time.Second, side.keep)
		if len(got) != 1 {
			t.Fatalf("%d rows, want 1", len(got))
		}
		ebpftest.Expect(t, got[0], row{
			"major_version": int64(2), "minor_version": int64(0), "req_method": "POST", "req_path": "/echo?from=curl",
			"req_body": "hello body", "req_body_size": int64(10), "resp_status": int64(200), "resp_body": "got 10 bytes",
			"resp_body_size": int64(12), "encrypted": false, "remote_addr": "127.0.0.1", "local_addr": "127.0.0.1",
		})
		if u := got[0]["upid"].(types.UInt128Value); int(u.PID()) != side.pid {
			t.Errorf("upid pid %d, want %d", u.PID(), side.pid)
		}
		if h := got[0]["req_headers"].(string); !strings.Contains(h, `"user-agent":"curl/`) || !strings.Contains(h, `":authority":"127.0.0.1:`) {
			t.Errorf("req_headers %s", h)
		}
	}
}

// TestTraceH2load traces nghttpd and h2load (4 connections, 10 streams
// at once on each): every request is a row, the server's.
func TestTraceH2load(t *testing.T) {
	const n = 4000
	port, pid := http2.StartNghttpd(t, http2.DocRoot(t, 500))
	load := dbtest.Hold(t, nil, "", dbtest.Need(t, "h2load"), "-n", strconv.Itoa(n), "-c", "4", "-m", "10", "http://127.0.0.1:"+strconv.Itoa(port)+"/f")
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(pid), uint32(load.Pid)}})
	if out, err := load.Run(); err != nil || !strings.Contains(out, fmt.Sprintf("%d succeeded", n)) {
		t.Fatalf("h2load: %v %s", err, out)
	}
	got := ebpftest.WaitRows(t, store, "http_events", n, 10*time.Second, ebpftest.ServerRow(port))
	bad := 0
	for _, r := range got {
		if r["req_path"] != "/f" || r["resp_status"] != int64(200) || r["resp_body_size"] != int64(500) || r["major_version"] != int64(2) {
			bad++
		}
	}
	st := tr.Stats()
	t.Logf("%d rows, %d wrong; lost events %d; counters %v", len(got), bad, st.LostEvents, pick(st.Counters, "http2."))
	if len(got) != n || bad != 0 {
		t.Errorf("%d rows (%d wrong), want %d", len(got), bad, n)
	}
	if c := len(ebpftest.WaitRows(t, store, "http_events", 0, 0, ebpftest.ClientRow(port))); c != 0 {
		t.Errorf("%d client rows, want none (the server is traced)", c)
	}
}

// TestTraceH2TLS traces h2 inside TLS (ALPN h2), its plaintext read by
// the OpenSSL uprobes: nghttpd with a certificate made here, curl
// --http2 and h2load (both OpenSSL) as clients. Rows are the server's,
// encrypted, as sent.
func TestTraceH2TLS(t *testing.T) {
	crt, key := testcert.Files(t, t.TempDir())
	port := dbtest.FreePort(t)
	dir := http2.DocRoot(t, 300)
	srv := exec.Command(dbtest.Need(t, "nghttpd", "/usr/sbin"), "-d", dir, strconv.Itoa(port), key, crt)
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/f"
	for i := 0; ; i++ {
		if _, err := dbtest.RunErr(nil, "curl", "-sSk", "--http2", "-o", "/dev/null", url); err == nil {
			break
		} else if i > 100 {
			t.Fatalf("nghttpd does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	const n = 200
	curl := dbtest.Hold(t, nil, "", dbtest.Need(t, "curl"), "-sSk", "--http2", "-H", "x-via: curl", url)
	load := dbtest.Hold(t, nil, "", dbtest.Need(t, "h2load"), "-n", strconv.Itoa(n), "-c", "2", "-m", "10", url)
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(srv.Process.Pid), uint32(curl.Pid), uint32(load.Pid)}})
	if out, err := curl.Run(); err != nil || out != strings.Repeat("n", 300) {
		t.Fatalf("curl: %v %.100q", err, out)
	}
	if out, err := load.Run(); err != nil || !strings.Contains(out, fmt.Sprintf("%d succeeded", n)) {
		t.Fatalf("h2load: %v %s", err, out)
	}
	got := ebpftest.WaitRows(t, store, "http_events", n+1, 10*time.Second, ebpftest.ServerRow(port))
	if len(got) != n+1 {
		t.Fatalf("%d server rows, want %d (counters %v)", len(got), n+1, pick(tr.Stats().Counters, "http2."))
	}
	viaCurl := 0
	for _, r := range got {
		ebpftest.Expect(t, r, row{"encrypted": true, "major_version": int64(2), "req_method": "GET", "req_path": "/f",
			"resp_status": int64(200), "resp_body_size": int64(300), "resp_body": strings.Repeat("n", 300)})
		if strings.Contains(r["req_headers"].(string), `"x-via":"curl"`) {
			viaCurl++
			if u := r["upid"].(types.UInt128Value); int(u.PID()) != srv.Process.Pid {
				t.Errorf("upid pid %d, want nghttpd's %d", u.PID(), srv.Process.Pid)
			}
		}
	}
	if viaCurl != 1 {
		t.Errorf("%d rows of curl's request, want 1", viaCurl)
	}
	if c := len(ebpftest.WaitRows(t, store, "http_events", 0, 0, ebpftest.ClientRow(port))); c != 0 {
		t.Errorf("%d client rows, want none (the server is traced)", c)
	}
}

func pick(m map[string]int64, prefix string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

// TestTraceMidStream traces connections that predate the tracer (it is
// paused while they open and carry their first requests). grpc-go's
// encoders refer to header fields they indexed before: those streams
// are counted as undecodable and make no row, and no row is wrong.
// nghttp2's peers told to keep no dynamic table are decoded from the
// first header block seen on.
func TestTraceMidStream(t *testing.T) {
	port, pid := http2.StartNghttpd(t, http2.DocRoot(t, 100), "--encoder-header-table-size=0", "--header-table-size=0")
	load := dbtest.Hold(t, nil, "", dbtest.Need(t, "h2load"), "--encoder-header-table-size=0", "--header-table-size=0",
		"-D", "3", "-c", "1", "-m", "1", "http://127.0.0.1:"+strconv.Itoa(port)+"/f")
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(os.Getpid()), uint32(pid), uint32(load.Pid)}})
	tr.Pause()

	addr := http2.StartGRPCServer(t)
	c, _ := http2.GRPCClient(t, addr)
	http2.GRPCCalls(t, c)
	done := make(chan string)
	go func() {
		out, err := load.Run()
		if err != nil {
			out = err.Error() + out
		}
		done <- out
	}()
	time.Sleep(time.Second)
	if err := tr.Resume(); err != nil {
		t.Fatal(err)
	}
	calls := http2.Calls()
	for i := 0; i < 20; i++ {
		http2.GRPCCalls(t, c)
	}
	out := <-done
	if !strings.Contains(out, " succeeded, 0 failed") {
		t.Fatalf("h2load: %s", out)
	}
	time.Sleep(300 * time.Millisecond)
	grpcPort := portOf(t, addr)
	var grpcRows, h2Rows int
	for _, r := range ebpftest.Rows(t, store, "http_events") {
		switch {
		case ebpftest.ServerRow(grpcPort)(r):
			grpcRows++
			ok := false
			for _, call := range calls {
				ok = ok || r["req_path"] == call.Path && r["req_body"] == call.ReqBody && r["resp_body"] == call.RespBody
			}
			if !ok {
				t.Errorf("gRPC row not of a call: %v", r)
			}
		case ebpftest.ServerRow(port)(r):
			h2Rows++
			if r["req_path"] != "/f" || r["resp_status"] != int64(200) || r["resp_body_size"] != int64(100) || r["req_method"] != "GET" {
				t.Errorf("h2load row %v", r)
			}
		}
	}
	st := tr.Stats()
	t.Logf("gRPC rows %d, h2load rows %d (%s); counters %v", grpcRows, h2Rows, strings.TrimSpace(lastLine(out, "requests:")), pick(st.Counters, "http2."))
	if st.Counters["http2.sides_mid_stream"] == 0 || st.Counters["http2.streams_undecodable"] == 0 {
		t.Errorf("the connections were not taken mid-stream: counters %v", pick(st.Counters, "http2."))
	}
	if h2Rows < 100 {
		t.Errorf("%d h2load rows after the tracer resumed, want the requests of two seconds", h2Rows)
	}
}

func lastLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestInferOthers: no other protocol's rule takes HTTP/2's first bytes
// (the client's preface and frames, the server's SETTINGS), whole or cut.
func TestInferOthers(t *testing.T) {
	chunks := dbtest.Replay(t, "testdata/grpc.bin")
	for _, p := range all.Protocols() {
		if p.Name() == "http2" {
			continue
		}
		for _, c := range chunks[:6] {
			for i := 1; i <= len(c.Data); i++ {
				if m, _ := p.Infer(c.Data[:i], true); m {
					t.Errorf("%s takes HTTP/2 bytes %q", p.Name(), c.Data[:i])
					break
				}
			}
		}
	}
}

// grpcLoad is the load of BenchmarkGRPCUnary, in a process of its own
// (the test binary run with PXQ_GRPC_LOAD=1): a grpc-go server and a
// client making unary calls from 4 goroutines over one connection. Each
// line "N" on stdin runs calls for N milliseconds on a new connection and
// answers with the number of calls made.
func grpcLoad() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http2.NewGRPCServer().Serve(l)
	req := &testpb.SimpleRequest{ResponseSize: 64, Payload: &testpb.Payload{Body: make([]byte, 64)}}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		ms, _ := strconv.Atoi(in.Text())
		// A connection per round: one opened while the tracer was
		// paused would be seen mid-stream, its headers undecodable.
		cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			panic(err)
		}
		c := testpb.NewTestServiceClient(cc)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
		var calls atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if _, err := c.UnaryCall(context.Background(), req); err == nil {
						calls.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		cc.Close()
		fmt.Println(calls.Load())
	}
}

// BenchmarkGRPCUnary measures what tracing costs gRPC unary calls
// (grpc-go client and server, 64-byte payloads each way, 4 calls in
// flight on one connection), in rounds with the tracer paused and
// attached, interleaved: calls per second (median ratio on/off), the
// tracer's CPU per call (this process's CPU: the load runs in another),
// the calls captured (the server's rows) against those made, and lost
// events. Run with -bench GRPCUnary -benchtime 1x.
func BenchmarkGRPCUnary(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PXQ_GRPC_LOAD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	out := bufio.NewScanner(stdout)
	next := func() int {
		if !out.Scan() {
			b.Fatalf("the load process ended: %v", out.Err())
		}
		n, _ := strconv.Atoi(out.Text())
		return n
	}
	port := next()
	tr, store := ebpftest.Tracer(b, ebpf.Config{OnlyPIDs: []uint32{uint32(cmd.Process.Pid)}})
	const roundMS = 2000
	run := func() (calls int, rate float64) {
		fmt.Fprintln(stdin, roundMS)
		calls = next()
		return calls, float64(calls) / (roundMS / 1000.0)
	}
	serverRows := func() int { return len(ebpftest.WaitRows(b, store, "http_events", 0, 0, ebpftest.ServerRow(port))) }
	run() // warm up
	var ratios, cpuPerCall, captured []float64
	for i := 0; i < 5; i++ {
		tr.Pause()
		_, off := run()
		if err := tr.Resume(); err != nil {
			b.Fatal(err)
		}
		before := serverRows()
		cpu0 := cpuNS()
		calls, on := run()
		cpu := cpuNS() - cpu0
		time.Sleep(300 * time.Millisecond) // the last rows' flush
		rows := serverRows() - before
		ratios = append(ratios, on/off)
		cpuPerCall = append(cpuPerCall, float64(cpu)/float64(calls))
		captured = append(captured, float64(rows)/float64(calls))
		b.Logf("round %d: off %.0f calls/s, on %.0f calls/s, %d calls, %d rows, tracer CPU %.0f ns/call", i, off, on, calls, rows, float64(cpu)/float64(calls))
	}
	b.ReportMetric(median(ratios), "calls_on/off")
	b.ReportMetric(median(cpuPerCall), "tracer_ns/call")
	b.ReportMetric(median(captured), "captured/sent")
	b.ReportMetric(float64(tr.Stats().LostEvents), "lost_events")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// cpuNS is the CPU time (user and system) of this process.
func cpuNS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
