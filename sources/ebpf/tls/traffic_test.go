package tls_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testcert"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// The TLS server of most tests is Go's (crypto/tls, which the OpenSSL
// probes do not see: its socket carries ciphertext, which nothing
// parses), so the rows are its clients'. It is traced as a server all the
// same, which must not make the decrypted clients' rows be left out as
// those of a traced server's clients are: only a server that is parsed
// counts.

// httpsServer is a Go net/http server with TLS on 127.0.0.1, HTTP/1.1
// only. /hello answers JSON; /echo the size of the request body.
func httpsServer(t testing.TB) (url string, port int) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Test", "tls")
		io.WriteString(w, `{"ok":true}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "got %d bytes", len(b))
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return srv.URL, port
}

// need returns the path of a program the test runs, or skips (fails
// under CI=true) without it.
func need(t testing.TB, prog string) string {
	t.Helper()
	path, err := exec.LookPath(prog)
	if err != nil {
		testenv.SkipOrFailf(t, "%s is not installed: %v", prog, err)
	}
	return path
}

// traceAll starts a tracer of every process (the clients are other
// processes). These tests are of the OpenSSL probes: the Go probes, which
// would decrypt the test's own server, are off (gotls_test.go has them).
func traceAll(t testing.TB, cfg ebpf.Config) (*ebpf.Tracer, *table.Store) {
	cfg.OnlyPIDs = []uint32{}
	cfg.DisableGoTLS = true
	return ebpftest.Tracer(t, cfg)
}

// wantRow checks a row of a decrypted request: encrypted, the role, the
// process and the connection's addresses.
func wantRow(t *testing.T, r map[string]any, pid, role int, port int, method, path string, status int64) {
	t.Helper()
	wantRowVersion(t, r, pid, role, port, method, path, status, 1)
}

// wantRowVersion is wantRow for HTTP/major.
func wantRowVersion(t *testing.T, r map[string]any, pid, role int, port int, method, path string, status, major int64) {
	t.Helper()
	ebpftest.Expect(t, r, map[string]any{
		"encrypted": true, "trace_role": int64(role), "req_method": method, "req_path": path,
		"resp_status": status, "remote_addr": "127.0.0.1", "local_addr": "127.0.0.1", "major_version": major,
	})
	if got := r["upid"].(types.UInt128Value).PID(); got != uint32(pid) {
		t.Errorf("upid pid = %d, want %d", got, pid)
	}
	serverPort, clientPort := r["remote_port"].(int64), r["local_port"].(int64)
	if role == 2 {
		serverPort, clientPort = clientPort, serverPort
	}
	if serverPort != int64(port) || clientPort == 0 || clientPort == int64(port) {
		t.Errorf("ports: local %v remote %v, server's is %d", r["local_port"], r["remote_port"], port)
	}
}

// rowsOf selects the rows of one process's connections to or from port.
func rowsOf(pid, port int) func(map[string]any) bool {
	return func(r map[string]any) bool {
		return r["upid"].(types.UInt128Value).PID() == uint32(pid) &&
			(r["remote_port"] == int64(port) || r["local_port"] == int64(port))
	}
}

func TestCurlHTTPS(t *testing.T) {
	curl := need(t, "curl")
	tr, store := traceAll(t, ebpf.Config{ConnStatsPeriod: 200 * time.Millisecond})
	url, port := httpsServer(t)
	// Two requests on one connection, the second a POST with a body
	// larger than a TLS record.
	body := strings.Repeat("b", 40000)
	cmd := exec.Command(curl, "-k", "-s", "--http1.1", "-H", "X-Req: 1", url+"/hello?x=1",
		"--next", "-k", "-s", "--http1.1", "--data-binary", body, url+"/echo")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"ok"`) || !strings.Contains(string(out), "got 40000 bytes") {
		t.Fatalf("curl: %v: %s", err, out)
	}
	rows := ebpftest.WaitRows(t, store, "http_events", 2, 5*time.Second, rowsOf(cmd.Process.Pid, port))
	if len(rows) != 2 {
		t.Fatalf("%d rows of curl, want 2: %v", len(rows), ebpftest.Rows(t, store, "http_events"))
	}
	wantRow(t, rows[0], cmd.Process.Pid, 1, port, "GET", "/hello?x=1", 200)
	ebpftest.Expect(t, rows[0], map[string]any{"resp_body": `{"ok":true}`, "resp_message": "OK"})
	if h := rows[0]["req_headers"].(string); !strings.Contains(h, `"X-Req":"1"`) {
		t.Errorf("req_headers %s", h)
	}
	if h := rows[0]["resp_headers"].(string); !strings.Contains(h, `"X-Test":"tls"`) {
		t.Errorf("resp_headers %s", h)
	}
	wantRow(t, rows[1], cmd.Process.Pid, 1, port, "POST", "/echo", 200)
	ebpftest.Expect(t, rows[1], map[string]any{"req_body_size": int64(len(body)), "resp_body": "got 40000 bytes",
		"local_port": rows[0]["local_port"]})
	// Nothing else: the ciphertext of either side is not parsed.
	if all := ebpftest.Rows(t, store, "http_events"); len(all) != 2 {
		t.Errorf("%d rows in all, want 2: %v", len(all), all)
	}
	st := tr.Stats()
	if st.Counters["tls.conns"] < 1 || st.Counters["tls.files_probed"] < 1 {
		t.Errorf("counters: %v", st.Counters)
	}
	// conn_stats files curl's connection as TLS with its wire bytes.
	cs := ebpftest.WaitRows(t, store, "conn_stats", 1, 3*time.Second, func(r map[string]any) bool {
		return r["upid"].(types.UInt128Value).PID() == uint32(cmd.Process.Pid) && r["remote_port"] == int64(port)
	})
	if len(cs) == 0 {
		t.Fatal("no conn_stats row for curl")
	}
	r := cs[len(cs)-1]
	ebpftest.Expect(t, r, map[string]any{"ssl": true, "protocol": int64(1), "trace_role": int64(1)})
	if r["bytes_sent"].(int64) < int64(len(body)) {
		t.Errorf("bytes_sent %v", r["bytes_sent"])
	}
}

// With AllClientSides the row is the same: there is one side to record.
func TestCurlHTTPSAllClientSides(t *testing.T) {
	curl := need(t, "curl")
	_, store := traceAll(t, ebpf.Config{AllClientSides: true})
	url, port := httpsServer(t)
	cmd := exec.Command(curl, "-k", "-s", "--http1.1", url+"/hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	rows := ebpftest.WaitRows(t, store, "http_events", 1, 5*time.Second, ebpftest.ClientRow(port))
	if len(rows) != 1 {
		t.Fatalf("%d client rows, want 1: %v", len(rows), ebpftest.Rows(t, store, "http_events"))
	}
	wantRow(t, rows[0], cmd.Process.Pid, 1, port, "GET", "/hello", 200)
}

// python3's urllib links libssl through its _ssl module, loaded when ssl
// is imported, and calls SSL_write_ex and SSL_read_ex.
func TestPythonHTTPS(t *testing.T) {
	py := need(t, "python3")
	_, store := traceAll(t, ebpf.Config{})
	url, port := httpsServer(t)
	script := `import ssl, sys, urllib.request
ctx = ssl._create_unverified_context()
req = urllib.request.Request(sys.argv[1] + "/echo", data=b"p" * 3000, method="PUT")
print(urllib.request.urlopen(req, context=ctx).read().decode())`
	cmd := exec.Command(py, "-c", script, url)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "got 3000 bytes") {
		t.Fatalf("python3: %v: %s", err, out)
	}
	rows := ebpftest.WaitRows(t, store, "http_events", 1, 5*time.Second, rowsOf(cmd.Process.Pid, port))
	if len(rows) != 1 {
		t.Fatalf("%d rows of python3, want 1: %v", len(rows), ebpftest.Rows(t, store, "http_events"))
	}
	wantRow(t, rows[0], cmd.Process.Pid, 1, port, "PUT", "/echo", 200)
	ebpftest.Expect(t, rows[0], map[string]any{"req_body_size": int64(3000), "resp_body": "got 3000 bytes"})
}

func TestOpenSSLSClient(t *testing.T) {
	openssl := need(t, "openssl")
	_, store := traceAll(t, ebpf.Config{})
	_, port := httpsServer(t)
	cmd := exec.Command(openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-quiet")
	cmd.Stdin = strings.NewReader("GET /hello?from=s_client HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `{"ok":true}`) {
		t.Fatalf("openssl s_client: %v: %s", err, out)
	}
	rows := ebpftest.WaitRows(t, store, "http_events", 1, 5*time.Second, rowsOf(cmd.Process.Pid, port))
	if len(rows) != 1 {
		t.Fatalf("%d rows of s_client, want 1: %v", len(rows), ebpftest.Rows(t, store, "http_events"))
	}
	wantRow(t, rows[0], cmd.Process.Pid, 1, port, "GET", "/hello?from=s_client", 200)
}

// nginx decrypts with libssl too: both ends are traced, so by default the
// request is the server's row only, and with AllClientSides curl's too.
func TestNginxHTTPS(t *testing.T) {
	nginx := need(t, "nginx")
	curl := need(t, "curl")
	testenv.RequireRoot(t, "run nginx")
	port, ngx := startNginx(t, nginx)
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllClientSides=%v", all), func(t *testing.T) {
			_, store := traceAll(t, ebpf.Config{AllClientSides: all})
			url := fmt.Sprintf("https://127.0.0.1:%d", port)
			cmd := exec.Command(curl, "-k", "-s", "--http1.1", url+"/hello", url+"/hello?second")
			out, err := cmd.CombinedOutput()
			if err != nil || strings.Count(string(out), `{"nginx":true}`) != 2 {
				t.Fatalf("curl: %v: %s", err, out)
			}
			srv := ebpftest.WaitRows(t, store, "http_events", 2, 5*time.Second, rowsOf(ngx, port))
			if len(srv) != 2 {
				t.Fatalf("%d rows of nginx, want 2: %v", len(srv), ebpftest.Rows(t, store, "http_events"))
			}
			wantRow(t, srv[0], ngx, 2, port, "GET", "/hello", 200)
			wantRow(t, srv[1], ngx, 2, port, "GET", "/hello?second", 200)
			ebpftest.Expect(t, srv[0], map[string]any{"resp_body": `{"nginx":true}`})
			want := 0
			if all {
				want = 2
			}
			cli := ebpftest.WaitRows(t, store, "http_events", want, time.Second, rowsOf(cmd.Process.Pid, port))
			if len(cli) != want {
				t.Fatalf("%d rows of curl, want %d: %v", len(cli), want, ebpftest.Rows(t, store, "http_events"))
			}
			for i, path := range []string{"/hello", "/hello?second"}[:want] {
				wantRow(t, cli[i], cmd.Process.Pid, 1, port, "GET", path, 200)
				if cli[i]["local_port"] != srv[i]["remote_port"] {
					t.Errorf("curl's port %v, nginx's peer %v", cli[i]["local_port"], srv[i]["remote_port"])
				}
			}
		})
	}
}

// startNginx runs nginx in the foreground, one process, serving /hello
// over TLS with a certificate made here; it returns its port and pid.
func startNginx(t *testing.T, nginx string) (port, pid int) {
	dir := t.TempDir()
	cert, key := testcert.Files(t, dir)
	port = freePort(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s;
	server {
		listen 127.0.0.1:%[2]d ssl;
		ssl_certificate %[3]s;
		ssl_certificate_key %[4]s;
		location /hello {
			default_type application/json;
			return 200 '{"nginx":true}';
		}
	}
}
`, dir, port, cert, key)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v: %s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	return port, cmd.Process.Pid
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A program's own SSL_write calls its SSL_write_ex: one write. Its
// SSL_read hands out bytes read earlier, without a syscall: they belong
// to the socket its first read used. Its last SSL_read returns -1. The
// bytes it moves on its socket inside these calls are not parsed: the
// client's rows are the plaintext's, one per request.
func TestNestedAndBufferedCalls(t *testing.T) {
	cc := need(t, "cc")
	bin := filepath.Join(t.TempDir(), "fakessl")
	if out, err := exec.Command(cc, "-O2", "-fno-optimize-sibling-calls", "-o", bin, "testdata/fakessl.c").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v: %s", err, out)
	}
	_, port := ebpftest.HTTPServer(t)
	const n = 5
	c := startClient(t, bin, nil, strconv.Itoa(port), strconv.Itoa(n))
	if !c.lines.Scan() || c.lines.Text() != "ready" {
		t.Fatalf("client not ready: %q", c.lines.Text())
	}
	// Started now, the tracer finds the client running. The server is
	// plaintext HTTP, parsed: the client's rows are kept with
	// AllClientSides only.
	_, store := traceAll(t, ebpf.Config{AllClientSides: true})
	io.WriteString(c.stdin, "go\n")
	if !c.lines.Scan() || c.lines.Text() == "" {
		t.Fatalf("client failed")
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("fakessl: %v", err)
	}
	pid := c.cmd.Process.Pid
	rows := ebpftest.WaitRows(t, store, "http_events", n, 5*time.Second, rowsOf(pid, port))
	if len(rows) != n {
		t.Fatalf("%d rows of the client, want %d: %v", len(rows), n, ebpftest.Rows(t, store, "http_events"))
	}
	for i, r := range rows {
		wantRow(t, r, pid, 1, port, "GET", fmt.Sprintf("/hello?n=%d", i), 200)
		ebpftest.Expect(t, r, map[string]any{"resp_body": `{"ok":true}`})
	}
	srv := ebpftest.WaitRows(t, store, "http_events", n, 5*time.Second, func(r map[string]any) bool {
		return r["local_port"] == int64(port) && r["remote_port"] == rows[0]["local_port"]
	})
	if len(srv) != n || srv[0]["encrypted"] != false || srv[0]["trace_role"] != int64(2) {
		t.Errorf("server rows %v", srv)
	}
}

// sslClient builds testdata/sslclient.c, with OpenSSL linked statically
// (static) or with libssl.so.
func sslClient(t testing.TB, static bool) string {
	cc := need(t, "cc")
	if _, err := os.Stat("/usr/include/openssl/ssl.h"); err != nil {
		testenv.SkipOrFailf(t, "OpenSSL headers (libssl-dev) are not installed")
	}
	out := filepath.Join(t.TempDir(), "sslclient")
	args := []string{"-O1", "-o", out, "testdata/sslclient.c"}
	if static {
		args = append(args, "-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic", "-ldl", "-lpthread")
	} else {
		args = append(args, "-lssl", "-lcrypto")
	}
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		testenv.SkipOrFailf(t, "cannot build the OpenSSL client (static %v): %v: %s", static, err, b)
	}
	return out
}

// clientRun is a run of sslclient: its process and the requests it made.
type clientRun struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

func startClient(t *testing.T, bin string, env []string, args ...string) *clientRun {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return &clientRun{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
}

// wait reads the client's output until it exits and returns the
// requests it made.
func (c *clientRun) wait(t *testing.T) int {
	n := 0
	for c.lines.Scan() {
		if f := strings.Fields(c.lines.Text()); len(f) == 2 && f[1] != "0" {
			n++
		}
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("sslclient: %v", err)
	}
	return n
}

// waitLast waits for the row of the client's last request (rows come in
// order) and returns the client's rows.
func waitLast(t *testing.T, store *table.Store, pid, port int, last string) []map[string]any {
	t.Helper()
	ebpftest.WaitRows(t, store, "http_events", 1, 3*time.Second, func(r map[string]any) bool {
		return rowsOf(pid, port)(r) && r["req_path"] == last
	})
	return ebpftest.WaitRows(t, store, "http_events", 0, 0, rowsOf(pid, port))
}

// paths returns the request paths of rows.
func paths(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["req_path"].(string))
	}
	return out
}

// A program that links OpenSSL statically, started after the tracer: its
// exec is seen, and its own file probed. The uprobes are set after the
// exec, as the program runs, so its first calls may be missed; the later
// ones are not.
func TestStaticOpenSSLStartedAfter(t *testing.T) {
	bin := sslClient(t, true)
	tr, store := traceAll(t, ebpf.Config{StatsPeriod: 200 * time.Millisecond})
	_, port := httpsServer(t)
	const n = 6
	c := startClient(t, bin, []string{"EX=1"}, strconv.Itoa(port), "/hello", strconv.Itoa(n), "100")
	if got := c.wait(t); got != n {
		t.Fatalf("the client made %d requests, want %d", got, n)
	}
	pid := c.cmd.Process.Pid
	rows := waitLast(t, store, pid, port, fmt.Sprintf("/hello?n=%d", n-1))
	if len(rows) < n-2 || rows[len(rows)-1]["req_path"] != fmt.Sprintf("/hello?n=%d", n-1) {
		t.Fatalf("rows %v, want at least the last %d of %d requests: %v", paths(rows), n-2, n, tr.Stats().Counters)
	}
	t.Logf("%d of %d requests captured (the probes are set after the exec, %d µs here)", len(rows), n,
		tr.Stats().Counters["tls.probe_latency_us_last"])
	for _, r := range rows {
		wantRow(t, r, pid, 1, port, "GET", r["req_path"].(string), 200)
	}
	// Its file is in probe_status.
	probed := false
	for _, p := range ebpftest.WaitRows(t, store, "probe_status", 1, 3*time.Second, func(r map[string]any) bool {
		return strings.HasSuffix(r["tracepoint"].(string), "/sslclient")
	}) {
		probed = probed || p["status"] == int64(0) && strings.Contains(p["info"].(string), `"SSL_write_ex"`)
	}
	if !probed {
		t.Errorf("no probe_status row of the client: %v", ebpftest.Rows(t, store, "probe_status"))
	}
}

// A program already running when the tracer starts, linked statically,
// and one that uses libssl.so, traced alone (OnlyPIDs): the tracer finds
// their files in their mappings.
func TestAlreadyRunning(t *testing.T) {
	for _, static := range []bool{true, false} {
		t.Run(fmt.Sprintf("static=%v", static), func(t *testing.T) {
			bin := sslClient(t, static)
			_, port := httpsServer(t)
			const n = 3
			c := startClient(t, bin, nil, strconv.Itoa(port), "/hello", strconv.Itoa(n), "0", "wait")
			if !c.lines.Scan() || c.lines.Text() != "ready" {
				t.Fatalf("client not ready: %q", c.lines.Text())
			}
			pid := c.cmd.Process.Pid
			tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(pid)}})
			io.WriteString(c.stdin, "go\n")
			if got := c.wait(t); got != n {
				t.Fatalf("the client made %d requests, want %d", got, n)
			}
			rows := ebpftest.WaitRows(t, store, "http_events", n, 5*time.Second, rowsOf(pid, port))
			if len(rows) != n {
				t.Fatalf("rows %v, want all %d requests", paths(rows), n)
			}
			for i, r := range rows {
				wantRow(t, r, pid, 1, port, "GET", fmt.Sprintf("/hello?n=%d", i), 200)
			}
			// Only the client is traced: every byte of its plaintext
			// was captured, and nothing else was parsed.
			st := tr.Stats()
			if st.GapBytes != 0 || st.TruncatedBytes != 0 || st.UserReadFailures != 0 || st.UnknownProtocolConns != 0 ||
				st.Counters["tls.conns"] != n || st.Counters["tls.files_probed"] != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// A program started after the tracer that loads a libssl no process had
// mapped (a copy: another inode): the tracer sees the mmap.
func TestNewLibraryMapped(t *testing.T) {
	bin := sslClient(t, false)
	lib := filepath.Join(t.TempDir(), "lib")
	os.Mkdir(lib, 0o755)
	for _, name := range []string{"libssl.so.3", "libcrypto.so.3"} {
		src, err := exec.Command("sh", "-c", "ldd "+bin+" | awk '/"+name+"/ {print $3}'").Output()
		if err != nil || len(src) == 0 {
			t.Fatalf("cannot find %s: %v", name, err)
		}
		b, err := os.ReadFile(strings.TrimSpace(string(src)))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(lib, name), b, 0o755)
	}
	tr, store := traceAll(t, ebpf.Config{StatsPeriod: 200 * time.Millisecond})
	_, port := httpsServer(t)
	const n = 6
	c := startClient(t, bin, []string{"LD_LIBRARY_PATH=" + lib}, strconv.Itoa(port), "/hello", strconv.Itoa(n), "100")
	if got := c.wait(t); got != n {
		t.Fatalf("the client made %d requests, want %d", got, n)
	}
	pid := c.cmd.Process.Pid
	rows := waitLast(t, store, pid, port, fmt.Sprintf("/hello?n=%d", n-1))
	if len(rows) < n-2 || rows[len(rows)-1]["req_path"] != fmt.Sprintf("/hello?n=%d", n-1) {
		t.Fatalf("rows %v, want at least the last %d of %d requests: %v", paths(rows), n-2, n, tr.Stats().Counters)
	}
	t.Logf("%d of %d requests captured (the probes are set after the library is mapped, %d µs here)", len(rows), n,
		tr.Stats().Counters["tls.probe_latency_us_last"])
	found := false
	for _, f := range ebpftest.WaitRows(t, store, "probe_status", 1, 3*time.Second, func(r map[string]any) bool {
		return strings.Contains(r["tracepoint"].(string), lib)
	}) {
		found = found || f["status"] == int64(0)
	}
	if !found {
		t.Errorf("no probe_status row of the copied libssl: %v", ebpftest.Rows(t, store, "probe_status"))
	}
}

// Pause detaches the uprobes with the rest; Resume sets them again on the
// files found before, the process that named them gone.
func TestPauseResume(t *testing.T) {
	curl := need(t, "curl")
	tr, store := traceAll(t, ebpf.Config{})
	url, port := httpsServer(t)
	run := func(path string) int {
		cmd := exec.Command(curl, "-k", "-s", "--http1.1", url+path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		return cmd.Process.Pid
	}
	before := run("/hello?before")
	tr.Pause()
	paused := run("/hello?paused")
	if err := tr.Resume(); err != nil {
		t.Fatal(err)
	}
	after := run("/hello?after")
	for _, c := range []struct {
		pid  int
		path string
		want int
	}{{before, "/hello?before", 1}, {after, "/hello?after", 1}, {paused, "/hello?paused", 0}} {
		rows := ebpftest.WaitRows(t, store, "http_events", max(c.want, 1), time.Second, rowsOf(c.pid, port))
		if len(rows) != c.want {
			t.Errorf("%s: %d rows, want %d", c.path, len(rows), c.want)
		} else if c.want == 1 {
			wantRow(t, rows[0], c.pid, 1, port, "GET", c.path, 200)
		}
	}
}

// With DisableTLS nothing is probed: curl's connection carries
// ciphertext, which is counted, not parsed.
func TestDisableTLS(t *testing.T) {
	curl := need(t, "curl")
	tr, store := traceAll(t, ebpf.Config{DisableTLS: true, ConnStatsPeriod: 100 * time.Millisecond})
	url, port := httpsServer(t)
	cmd := exec.Command(curl, "-k", "-s", "--http1.1", url+"/hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	cs := ebpftest.WaitRows(t, store, "conn_stats", 1, 3*time.Second, func(r map[string]any) bool {
		return r["upid"].(types.UInt128Value).PID() == uint32(cmd.Process.Pid) && r["remote_port"] == int64(port)
	})
	if len(cs) == 0 || cs[0]["ssl"] != false || cs[0]["bytes_sent"].(int64) == 0 {
		t.Fatalf("conn_stats of curl: %v", cs)
	}
	if rows := ebpftest.WaitRows(t, store, "http_events", 1, 200*time.Millisecond, rowsOf(cmd.Process.Pid, port)); len(rows) != 0 {
		t.Errorf("rows of curl: %v", rows)
	}
	for name := range tr.Stats().Counters {
		if strings.HasPrefix(name, "tls.") {
			t.Errorf("counter %s with DisableTLS", name)
		}
	}
}
