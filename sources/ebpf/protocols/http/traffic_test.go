package http_test

// Real traffic: a Go HTTP server and clients (Go's and curl) on
// 127.0.0.1, traced by the socket tracer.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

func headers(t *testing.T, r map[string]any, col string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(r[col].(string)), &m); err != nil {
		t.Fatalf("%s is not a JSON object: %q", col, r[col])
	}
	return m
}

func TestHTTPKeepAlive(t *testing.T) {
	_, store := ebpftest.Tracer(t, ebpf.Config{AllClientSides: true})
	srv, port := ebpftest.HTTPServer(t)
	c := ebpftest.HTTPClient()

	req, _ := http.NewRequest("GET", srv.URL+"/hello?x=1", nil)
	req.Header.Set("X-Req", "abc")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	resp, err = c.Post(srv.URL+"/echo", "text/plain", strings.NewReader("hello body"))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()

	self := os.Getpid()
	start, err := proc.StartNS(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		name string
		keep func(map[string]any) bool
	}{{"server", ebpftest.ServerRow(port)}, {"client", ebpftest.ClientRow(port)}} {
		got := ebpftest.WaitRows(t, store, "http_events", 2, 5*time.Second, side.keep)
		if len(got) != 2 {
			t.Fatalf("%s: %d rows, want 2: %v", side.name, len(got), got)
		}
		get, post := got[0], got[1]
		ebpftest.Expect(t, get, map[string]any{
			"req_method": "GET", "req_path": "/hello?x=1", "resp_status": int64(200), "resp_message": "OK",
			"resp_body": `{"ok":true}`, "resp_body_size": int64(11), "req_body": "", "req_body_size": int64(0),
			"major_version": int64(1), "minor_version": int64(1), "content_type": int64(1),
			"remote_addr": "127.0.0.1", "local_addr": "127.0.0.1", "encrypted": false,
		})
		ebpftest.Expect(t, post, map[string]any{
			"req_method": "POST", "req_path": "/echo", "req_body": "hello body", "req_body_size": int64(10),
			"resp_body": "got 10 bytes", "resp_body_size": int64(12), "content_type": int64(0),
		})
		if h := headers(t, get, "req_headers"); h["X-Req"] != "abc" || h["Host"] == "" {
			t.Errorf("%s req_headers %v", side.name, h)
		}
		if h := headers(t, get, "resp_headers"); h["X-Test"] != "yes" || h["Content-Type"] != "application/json" || h["Content-Length"] != "11" {
			t.Errorf("%s resp_headers %v", side.name, h)
		}
		if h := headers(t, post, "req_headers"); h["Content-Type"] != "text/plain" || h["Content-Length"] != "10" {
			t.Errorf("%s post req_headers %v", side.name, h)
		}
		for _, r := range got {
			u := r["upid"].(types.UInt128Value)
			if int(u.PID()) != self || u.StartNS() != start {
				t.Errorf("%s upid %v, want pid %d start %d", side.name, u, self, start)
			}
			if r["latency"].(int64) <= 0 {
				t.Errorf("%s latency %v", side.name, r["latency"])
			}
			if d := time.Since(time.Unix(0, r["time_"].(int64))); d < 0 || d > time.Minute {
				t.Errorf("%s time_ %v is %v from now", side.name, r["time_"], d)
			}
		}
		// Keep-alive: both requests on one connection.
		if get["local_port"] != post["local_port"] || get["remote_port"] != post["remote_port"] {
			t.Errorf("%s: requests on different connections", side.name)
		}
	}
	// The two sides saw the same connection.
	s := ebpftest.WaitRows(t, store, "http_events", 1, time.Second, ebpftest.ServerRow(port))[0]
	c0 := ebpftest.WaitRows(t, store, "http_events", 1, time.Second, ebpftest.ClientRow(port))[0]
	if s["remote_port"] != c0["local_port"] {
		t.Errorf("server sees peer port %v, client's port is %v", s["remote_port"], c0["local_port"])
	}
}

func TestHTTPPipelined(t *testing.T) {
	_, store := ebpftest.Tracer(t, ebpf.Config{AllClientSides: true})
	_, port := ebpftest.HTTPServer(t)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Two requests in one write.
	_, err = io.WriteString(conn, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i := 0; i < 2; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
	}
	for _, keep := range []func(map[string]any) bool{ebpftest.ServerRow(port), ebpftest.ClientRow(port)} {
		got := ebpftest.WaitRows(t, store, "http_events", 2, 5*time.Second, keep)
		if len(got) != 2 {
			t.Fatalf("%d rows, want 2", len(got))
		}
		ebpftest.Expect(t, got[0], map[string]any{"req_method": "GET", "req_path": "/hello", "resp_body": `{"ok":true}`})
		ebpftest.Expect(t, got[1], map[string]any{"req_method": "POST", "req_body": "xyz", "resp_body": "got 3 bytes"})
	}
}

func TestHTTPChunkedAndLargeBodies(t *testing.T) {
	_, store := ebpftest.Tracer(t, ebpf.Config{AllClientSides: true, MaxBodyBytes: 64})
	srv, port := ebpftest.HTTPServer(t)
	c := ebpftest.HTTPClient()
	get := func(path string) {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	get("/chunked")
	get("/big?n=1048576") // 1 MiB: more than the 64 KiB copied per syscall
	big := ebpftest.BigBody(200000)
	resp, err := c.Post(srv.URL+"/echo", "application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()

	for _, keep := range []func(map[string]any) bool{ebpftest.ServerRow(port), ebpftest.ClientRow(port)} {
		got := ebpftest.WaitRows(t, store, "http_events", 3, 5*time.Second, keep)
		if len(got) != 3 {
			t.Fatalf("%d rows, want 3: %v", len(got), got)
		}
		ebpftest.Expect(t, got[0], map[string]any{"req_path": "/chunked", "resp_body": "part-one;part-two;part-three", "resp_body_size": int64(28)})
		if h := headers(t, got[0], "resp_headers"); h["Transfer-Encoding"] != "chunked" {
			t.Errorf("chunked resp_headers %v", h)
		}
		ebpftest.Expect(t, got[1], map[string]any{"req_path": "/big?n=1048576", "resp_body": string(ebpftest.BigBody(64)), "resp_body_size": int64(1 << 20), "resp_status": int64(200)})
		ebpftest.Expect(t, got[2], map[string]any{"req_method": "POST", "req_body": string(big[:64]), "req_body_size": int64(200000), "resp_body": "got 200000 bytes"})
	}
}

func TestHTTPConcurrent(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{AllClientSides: true})
	srv, port := ebpftest.HTTPServer(t)
	c := ebpftest.HTTPClient()
	const workers, each = 16, 25
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, err := c.Get(fmt.Sprintf("%s/hello?w=%d&i=%d", srv.URL, w, i))
				if err != nil {
					t.Error(err)
					return
				}
				io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}(w)
	}
	wg.Wait()
	for _, keep := range []func(map[string]any) bool{ebpftest.ServerRow(port), ebpftest.ClientRow(port)} {
		got := ebpftest.WaitRows(t, store, "http_events", workers*each, 10*time.Second, keep)
		seen := map[string]bool{}
		for _, r := range got {
			seen[r["req_path"].(string)] = true
			ebpftest.Expect(t, r, map[string]any{"resp_status": int64(200), "resp_body": `{"ok":true}`})
		}
		if len(seen) != workers*each {
			t.Errorf("%d distinct requests traced, want %d (stats %+v)", len(seen), workers*each, tr.Stats())
		}
	}
	if s := tr.Stats(); s.LostEvents != 0 {
		t.Errorf("lost %d events", s.LostEvents)
	}
}

func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.SkipOrFail(t, "curl not installed (apt-get install -y curl)")
	}
	// Trace every process: curl's pid is not known before it starts.
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}, AllClientSides: true})
	srv, port := ebpftest.HTTPServer(t)
	cmd := exec.Command(curl, "-sS", "-H", "X-From: curl", srv.URL+"/hello?via=curl", srv.URL+"/hello?via=curl2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	got := ebpftest.WaitRows(t, store, "http_events", 2, 5*time.Second, ebpftest.ClientRow(port))
	if len(got) != 2 {
		t.Fatalf("%d curl rows, want 2", len(got))
	}
	for _, r := range got {
		if u := r["upid"].(types.UInt128Value); int(u.PID()) != cmd.Process.Pid {
			t.Errorf("upid pid %d, want curl's %d", u.PID(), cmd.Process.Pid)
		}
		if h := headers(t, r, "req_headers"); h["X-From"] != "curl" || !strings.HasPrefix(h["User-Agent"], "curl/") {
			t.Errorf("req_headers %v", h)
		}
		ebpftest.Expect(t, r, map[string]any{"resp_status": int64(200), "resp_body": `{"ok":true}`})
	}
	if got[0]["local_port"] != got[1]["local_port"] {
		t.Errorf("curl did not reuse its connection: %v vs %v", got[0]["local_port"], got[1]["local_port"])
	}
	srvRows := ebpftest.WaitRows(t, store, "http_events", 2, 5*time.Second, func(r map[string]any) bool {
		return ebpftest.ServerRow(port)(r) && strings.Contains(r["req_path"].(string), "via=curl")
	})
	if len(srvRows) != 2 {
		t.Errorf("%d server rows for curl's requests, want 2", len(srvRows))
	}
}

// TestOneRowPerRequest: when pxq traces both ends of a request, the
// request is one row, its server's; curl (nobody here wrote it) against a
// traced server is counted once too. The client side of a server that is
// not traced is kept (TestCurlUntracedServer).
func TestOneRowPerRequest(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}})
	srv, port := ebpftest.HTTPServer(t)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	const n = 20
	for i := 0; i < n; i++ {
		resp, err := client.Get(fmt.Sprintf("%s/hello?i=%d", srv.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		if out, err := exec.Command(curl, "-sS", srv.URL+"/hello?i=curl").CombinedOutput(); err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
	} else {
		testenv.SkipOrFail(t, "curl not installed (apt-get install -y curl)")
	}
	server := ebpftest.WaitRows(t, store, "http_events", n+1, 5*time.Second, ebpftest.ServerRow(port))
	time.Sleep(300 * time.Millisecond) // a client row would come with its response
	clientRows := 0
	for _, r := range ebpftest.Rows(t, store, "http_events") {
		if r["remote_port"] == int64(port) && r["trace_role"] == int64(1) {
			clientRows++
		}
	}
	if len(server) != n+1 || clientRows != 0 {
		t.Errorf("%d server rows and %d client rows for %d requests, want %d and 0", len(server), clientRows, n+1, n+1)
	}
	if got := tr.Stats().Counters["client_side_of_traced_server_conns"]; got < 2 {
		t.Errorf("client_side_of_traced_server_conns = %d, want at least 2 (Go's connection and curl's)", got)
	}
}

// TestCurlUntracedServer: the server is outside what pxq traces (a pid
// filter keeps only curl), so curl's side is the request's only row.
func TestCurlUntracedServer(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.SkipOrFail(t, "curl not installed (apt-get install -y curl)")
	}
	testenv.RequireRoot(t, "load BPF programs and attach tracepoints")
	srv, port := ebpftest.HTTPServer(t)
	// curl waits on a pipe so that its pid is in the filter before it
	// connects; this process, the server, is not traced.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh", "-c", `read x; exec "$@"`, "sh", curl, "-sS", srv.URL+"/hello?via=curl")
	sh.Stdin = r
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	store := table.NewStore(0)
	tr, err := ebpf.New(ebpf.Config{OnlyPIDs: []uint32{uint32(sh.Process.Pid)}, FlushInterval: 20 * time.Millisecond}, store)
	if err != nil {
		t.Fatalf("ebpf.New: %v", err)
	}
	tr.Start(t.Context())
	defer tr.Close()
	w.Write([]byte("go\n"))
	w.Close()
	if err := sh.Wait(); err != nil {
		t.Fatalf("curl: %v", err)
	}
	got := ebpftest.WaitRows(t, store, "http_events", 1, 5*time.Second, ebpftest.ClientRow(port))
	if len(got) != 1 {
		t.Fatalf("%d client rows for curl against an untraced server, want 1", len(got))
	}
}
