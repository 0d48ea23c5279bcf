package ebpf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/types"
)

func TestEventLayout(t *testing.T) {
	var ev bpf.TraceEvent
	if s := unsafe.Sizeof(ev); s != eventHeaderSize {
		t.Fatalf("struct event is %d bytes, decoder expects %d", s, eventHeaderSize)
	}
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"pos", unsafe.Offsetof(ev.Pos), 16}, {"local", unsafe.Offsetof(ev.Local), 48},
		{"remote", unsafe.Offsetof(ev.Remote), 68}, {"tgid", unsafe.Offsetof(ev.Tgid), 88},
		{"len", unsafe.Offsetof(ev.Len), 96}, {"type", unsafe.Offsetof(ev.Type), 104},
		{"peer_set", unsafe.Offsetof(ev.PeerSet), 108},
	} {
		if c.got != c.off {
			t.Errorf("offset of %s is %d, decoder uses %d", c.name, c.got, c.off)
		}
	}
}

// testServer is a Go net/http server on 127.0.0.1 with the handlers the
// tests call.
func testServer(t *testing.T) (*httptest.Server, int) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Test", "yes")
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "got %d bytes", len(b))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range []string{"part-one;", "part-two;", "part-three"} {
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
			time.Sleep(2 * time.Millisecond)
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bigBody(n))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "late")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return srv, p
}

func bigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}
}

func serverRow(port int) func(map[string]any) bool {
	return func(r map[string]any) bool { return r["local_port"] == int64(port) && r["trace_role"] == int64(2) }
}

func clientRow(port int) func(map[string]any) bool {
	return func(r map[string]any) bool { return r["remote_port"] == int64(port) && r["trace_role"] == int64(1) }
}

func headers(t *testing.T, r map[string]any, col string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(r[col].(string)), &m); err != nil {
		t.Fatalf("%s is not a JSON object: %q", col, r[col])
	}
	return m
}

func expect(t *testing.T, r map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v (row path %v role %v)", k, r[k], v, r["req_path"], r["trace_role"])
		}
	}
}

func TestHTTPKeepAlive(t *testing.T) {
	_, store := newTestTracer(t, Config{})
	srv, port := testServer(t)
	c := newClient()

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
	}{{"server", serverRow(port)}, {"client", clientRow(port)}} {
		got := waitRows(t, store, "http_events", 2, 5*time.Second, side.keep)
		if len(got) != 2 {
			t.Fatalf("%s: %d rows, want 2: %v", side.name, len(got), got)
		}
		get, post := got[0], got[1]
		expect(t, get, map[string]any{
			"req_method": "GET", "req_path": "/hello?x=1", "resp_status": int64(200), "resp_message": "OK",
			"resp_body": `{"ok":true}`, "resp_body_size": int64(11), "req_body": "", "req_body_size": int64(0),
			"major_version": int64(1), "minor_version": int64(1), "content_type": int64(1),
			"remote_addr": "127.0.0.1", "local_addr": "127.0.0.1", "encrypted": false,
		})
		expect(t, post, map[string]any{
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
	s := waitRows(t, store, "http_events", 1, time.Second, serverRow(port))[0]
	c0 := waitRows(t, store, "http_events", 1, time.Second, clientRow(port))[0]
	if s["remote_port"] != c0["local_port"] {
		t.Errorf("server sees peer port %v, client's port is %v", s["remote_port"], c0["local_port"])
	}
}

func TestHTTPPipelined(t *testing.T) {
	_, store := newTestTracer(t, Config{})
	_, port := testServer(t)
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
	for _, keep := range []func(map[string]any) bool{serverRow(port), clientRow(port)} {
		got := waitRows(t, store, "http_events", 2, 5*time.Second, keep)
		if len(got) != 2 {
			t.Fatalf("%d rows, want 2", len(got))
		}
		expect(t, got[0], map[string]any{"req_method": "GET", "req_path": "/hello", "resp_body": `{"ok":true}`})
		expect(t, got[1], map[string]any{"req_method": "POST", "req_body": "xyz", "resp_body": "got 3 bytes"})
	}
}

func TestHTTPChunkedAndLargeBodies(t *testing.T) {
	_, store := newTestTracer(t, Config{MaxBodyBytes: 64})
	srv, port := testServer(t)
	c := newClient()
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
	big := bigBody(200000)
	resp, err := c.Post(srv.URL+"/echo", "application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()

	for _, keep := range []func(map[string]any) bool{serverRow(port), clientRow(port)} {
		got := waitRows(t, store, "http_events", 3, 5*time.Second, keep)
		if len(got) != 3 {
			t.Fatalf("%d rows, want 3: %v", len(got), got)
		}
		expect(t, got[0], map[string]any{"req_path": "/chunked", "resp_body": "part-one;part-two;part-three", "resp_body_size": int64(28)})
		if h := headers(t, got[0], "resp_headers"); h["Transfer-Encoding"] != "chunked" {
			t.Errorf("chunked resp_headers %v", h)
		}
		expect(t, got[1], map[string]any{"req_path": "/big?n=1048576", "resp_body": string(bigBody(64)), "resp_body_size": int64(1 << 20), "resp_status": int64(200)})
		expect(t, got[2], map[string]any{"req_method": "POST", "req_body": string(big[:64]), "req_body_size": int64(200000), "resp_body": "got 200000 bytes"})
	}
}

func TestHTTPConcurrent(t *testing.T) {
	tr, store := newTestTracer(t, Config{})
	srv, port := testServer(t)
	c := newClient()
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
	for _, keep := range []func(map[string]any) bool{serverRow(port), clientRow(port)} {
		got := waitRows(t, store, "http_events", workers*each, 10*time.Second, keep)
		seen := map[string]bool{}
		for _, r := range got {
			seen[r["req_path"].(string)] = true
			expect(t, r, map[string]any{"resp_status": int64(200), "resp_body": `{"ok":true}`})
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
		t.Skip("curl not installed (apt-get install -y curl)")
	}
	// Trace every process: curl's pid is not known before it starts.
	_, store := newTestTracer(t, Config{OnlyPIDs: []uint32{}})
	srv, port := testServer(t)
	cmd := exec.Command(curl, "-sS", "-H", "X-From: curl", srv.URL+"/hello?via=curl", srv.URL+"/hello?via=curl2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	got := waitRows(t, store, "http_events", 2, 5*time.Second, clientRow(port))
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
		expect(t, r, map[string]any{"resp_status": int64(200), "resp_body": `{"ok":true}`})
	}
	if got[0]["local_port"] != got[1]["local_port"] {
		t.Errorf("curl did not reuse its connection: %v vs %v", got[0]["local_port"], got[1]["local_port"])
	}
	srvRows := waitRows(t, store, "http_events", 2, 5*time.Second, func(r map[string]any) bool {
		return serverRow(port)(r) && strings.Contains(r["req_path"].(string), "via=curl")
	})
	if len(srvRows) != 2 {
		t.Errorf("%d server rows for curl's requests, want 2", len(srvRows))
	}
}

func TestConnStatsAndReports(t *testing.T) {
	tr, store := newTestTracer(t, Config{ConnStatsPeriod: 100 * time.Millisecond, StatsPeriod: 200 * time.Millisecond})
	srv, port := testServer(t)
	c := newClient()
	for i := 0; i < 3; i++ {
		resp, err := c.Get(srv.URL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	c.CloseIdleConnections()
	got := waitRows(t, store, "conn_stats", 1, 5*time.Second, func(r map[string]any) bool {
		return r["remote_port"] == int64(port) && r["trace_role"] == int64(1) && r["conn_close"] == int64(1)
	})
	if len(got) == 0 {
		t.Fatalf("no closed client conn_stats row for port %d: %v", port, rows(store, "conn_stats"))
	}
	r := got[len(got)-1]
	expect(t, r, map[string]any{"remote_addr": "127.0.0.1", "addr_family": int64(2), "protocol": int64(1),
		"conn_open": int64(1), "conn_active": int64(0), "ssl": false})
	if r["bytes_sent"].(int64) < 3*40 || r["bytes_recv"].(int64) < 3*100 {
		t.Errorf("bytes sent %v recv %v", r["bytes_sent"], r["bytes_recv"])
	}
	errs := waitRows(t, store, "stirling_error", 1, 5*time.Second, func(r map[string]any) bool {
		return r["source_connector"] == SourceName && strings.Contains(r["context"].(string), `"bpf_events"`)
	})
	if len(errs) == 0 {
		t.Fatal("no stirling_error row")
	}
	var ctx Stats
	if err := json.Unmarshal([]byte(errs[len(errs)-1]["context"].(string)), &ctx); err != nil {
		t.Fatalf("context: %v", err)
	}
	probes := rows(store, "probe_status")
	ok := 0
	for _, p := range probes {
		if p["status"] == int64(0) {
			ok++
		}
	}
	if ok < len(tracepoints(&tr.objs.TracePrograms)) {
		t.Errorf("%d probes attached ok, want all %d: %v", ok, len(tracepoints(&tr.objs.TracePrograms)), probes)
	}
}

// The tracer reads syscall arguments from the saved registers at exit.
// write(2) has three: whatever the caller left in the fifth argument's
// register (r8 on x86-64) must not be taken for a sendto address, or a
// connected UDP socket's query would be filed under a made-up peer.
func TestWriteIgnoresUnusedArgumentRegisters(t *testing.T) {
	_, store := newTestTracer(t, Config{})
	srv := dnsResponder(t)
	port := srv.LocalAddr().(*net.UDPAddr).Port
	conn, err := net.Dial("udp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f, err := conn.(*net.UDPConn).File() // a blocking dup of the socket
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// An A query for svc.pxq.test, written with a sockaddr_in for
	// 10.9.9.9:99 where sendto's address would be.
	q := []byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03svc\x03pxq\x04test\x00\x00\x01\x00\x01")
	fake := [16]byte{2, 0, 0, 99, 10, 9, 9, 9}
	_, _, errno := syscall.Syscall6(syscall.SYS_WRITE, f.Fd(), uintptr(unsafe.Pointer(&q[0])), uintptr(len(q)),
		0, uintptr(unsafe.Pointer(&fake[0])), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	buf := make([]byte, 512)
	if _, err := f.Read(buf); err != nil {
		t.Fatal(err)
	}
	got := waitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
		return r["trace_role"] == int64(1)
	})
	if len(got) != 1 {
		t.Fatalf("%d client rows, want 1: %v", len(got), rows(store, "dns_events"))
	}
	expect(t, got[0], map[string]any{"remote_addr": "127.0.0.1", "remote_port": int64(port)})
}

// TestPauseResume: nothing is captured while paused, and a keep-alive
// connection that lived through the pause is picked up again on Resume
// (as a connection that predates the tracer), request by request.
func TestPauseResume(t *testing.T) {
	tr, store := newTestTracer(t, Config{})
	srv, port := testServer(t)
	c := newClient()
	get := func(path string) {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	path := func(p string) func(map[string]any) bool {
		return func(r map[string]any) bool { return serverRow(port)(r) && r["req_path"] == p }
	}
	get("/hello?before")
	if got := waitRows(t, store, "http_events", 1, 5*time.Second, path("/hello?before")); len(got) != 1 {
		t.Fatalf("before the pause: %d rows, want 1", len(got))
	}
	tr.Pause()
	tr.Pause() // a second Pause is a no-op
	get("/hello?paused")
	if err := tr.Resume(); err != nil {
		t.Fatal(err)
	}
	get("/hello?after")
	got := waitRows(t, store, "http_events", 1, 5*time.Second, path("/hello?after"))
	if len(got) != 1 {
		t.Fatalf("after Resume: %d rows of /hello?after, want 1", len(got))
	}
	expect(t, got[0], map[string]any{"resp_status": int64(200), "resp_body": `{"ok":true}`})
	if n := len(waitRows(t, store, "http_events", 1, 200*time.Millisecond, path("/hello?paused"))); n != 0 {
		t.Errorf("%d rows captured while paused, want 0", n)
	}
	for _, p := range rows(store, "probe_status") {
		if p["status"] != int64(0) {
			t.Errorf("probe_status after Resume: %v", p)
		}
	}
	tr.Close()
	tr.Pause() // no-op on a closed tracer
	if err := tr.Resume(); err == nil {
		t.Error("Resume of a closed tracer succeeded")
	}
}
