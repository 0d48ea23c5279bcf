package http2

// Real peers through a dbtest.Proxy, each connection parsed as the tracer
// would parse it on either side. The connections are recorded to
// testdata with PXQ_RECORD=1, for the replay tests.

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

type row = map[string]any

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

func newHarness(t testing.TB, role protocols.Role, cfg protocols.Config) *protocoltest.Harness {
	return protocoltest.New(t, Protocol{}, protocols.Conn{
		Role: role, Stream: true,
		Local: netip.MustParseAddrPort("127.0.0.1:8080"), Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
	}, cfg)
}

// live parses the connections through a proxy on both sides.
type live struct {
	t      testing.TB
	cfg    protocols.Config
	conns  map[int]*[2]*protocoltest.Harness
	chunks []dbtest.Chunk
}

func newLive(t testing.TB) *live {
	return &live{t: t, cfg: testConfig, conns: map[int]*[2]*protocoltest.Harness{}}
}

func (l *live) feed(c dbtest.Chunk) {
	l.chunks = append(l.chunks, c)
	h := l.conns[c.Conn]
	if h == nil {
		h = &[2]*protocoltest.Harness{newHarness(l.t, roles[0], l.cfg), newHarness(l.t, roles[1], l.cfg)}
		l.conns[c.Conn] = h
	}
	for i, role := range roles {
		h[i].Parser.Data(dbtest.Segment(c, role))
	}
}

// rows closes the parsers and returns each side's rows, connections in
// order, and the sides' counters.
func (l *live) rows(p *dbtest.Proxy) (sides [2][]row, counts [2]map[string]int64) {
	p.Close() // every connection ended: all chunks were fed
	ids := make([]int, 0, len(l.conns))
	for id := range l.conns {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	counts = [2]map[string]int64{{}, {}}
	for _, id := range ids {
		for i, h := range l.conns[id] {
			h.Parser.Close(time.Now().UnixNano())
			sides[i] = append(sides[i], h.Rows("http_events")...)
			for k, v := range h.Counts {
				counts[i][k] += v
			}
		}
	}
	return sides, counts
}

// headersOf decodes a headers column.
func headersOf(t testing.TB, r row, col string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(r[col].(string)), &m); err != nil {
		t.Fatalf("%s is not a JSON object: %q", col, r[col])
	}
	return m
}

// CheckGRPCRow checks a row against the call it is of, made over h2c.
func CheckGRPCRow(t testing.TB, r row, c Call) {
	t.Helper()
	checkGRPCRow(t, r, c, false)
}

// CheckGRPCRowTLS checks a row of a call made over TLS.
func CheckGRPCRowTLS(t testing.TB, r row, c Call) {
	t.Helper()
	checkGRPCRow(t, r, c, true)
}

func checkGRPCRow(t testing.TB, r row, c Call, encrypted bool) {
	t.Helper()
	want := row{
		"major_version": int64(2), "minor_version": int64(0), "content_type": int64(2),
		"req_method": "POST", "req_path": c.Path, "resp_status": int64(200), "resp_message": "OK",
		"req_body": c.ReqBody, "req_body_size": c.ReqSize, "resp_body": c.RespBody, "resp_body_size": c.RespSize,
		"encrypted": encrypted,
	}
	scheme := "http"
	if encrypted {
		scheme = "https"
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s: %s = %#v, want %#v", c.Path, k, r[k], v)
		}
	}
	req, resp := headersOf(t, r, "req_headers"), headersOf(t, r, "resp_headers")
	for k, v := range map[string]string{":method": "POST", ":path": c.Path, ":scheme": scheme, "content-type": "application/grpc", "te": "trailers"} {
		if req[k] != v {
			t.Errorf("%s: req_headers[%s] = %q, want %q (%v)", c.Path, k, req[k], v, req)
		}
	}
	if !strings.HasPrefix(req["user-agent"], "grpc-go/") || !strings.HasPrefix(req[":authority"], "127.0.0.1:") {
		t.Errorf("%s: req_headers %v", c.Path, req)
	}
	if resp[":status"] != "200" || resp["content-type"] != "application/grpc" || resp["grpc-status"] != c.Status || resp["grpc-message"] != c.Message {
		t.Errorf("%s: resp_headers %v, want grpc-status %q grpc-message %q", c.Path, resp, c.Status, c.Message)
	}
	if lat := r["latency"].(int64); lat <= 0 || lat > int64(10*time.Second) {
		t.Errorf("%s: latency %d", c.Path, lat)
	}
}

// TestGRPC runs grpc-go's client and server through the proxy: unary
// calls (one fails with a status), an unimplemented method, and
// server-, client- and bidirectional streaming, on one connection.
func TestGRPC(t *testing.T) {
	l := newLive(t)
	p := dbtest.NewProxy(t, StartGRPCServer(t), l.feed)
	c, cc := GRPCClient(t, p.Addr())
	calls := GRPCCalls(t, c)
	cc.Close()
	sides, counts := l.rows(p)
	for i, rows := range sides {
		if len(rows) != len(calls) {
			t.Fatalf("side %d: %d rows, want %d: %v", i+1, len(rows), len(calls), rows)
		}
		for j, c := range calls {
			CheckGRPCRow(t, rows[j], c)
			if rows[j]["trace_role"] != int64(i+1) {
				t.Errorf("side %d row %d: trace_role %v", i+1, j, rows[j]["trace_role"])
			}
		}
		if len(counts[i]) != 0 {
			t.Errorf("side %d: counters %v", i+1, counts[i])
		}
	}
	dbtest.Record(t, "testdata/grpc.bin", l.chunks, 0)
}

// TestH2CClients runs curl (with prior knowledge) and nghttp against
// Go's h2c server: curl's GET, POST and large download each on its own
// connection (curl 7.88 fails to reuse a prior-knowledge connection),
// then nghttp's two concurrent GETs on one connection, the second one's
// headers referring to the first one's in the dynamic table.
func TestH2CClients(t *testing.T) {
	curl := dbtest.Need(t, "curl")
	nghttp := dbtest.Need(t, "nghttp")
	u := StartH2CServer(t)
	l := newLive(t)
	p := dbtest.NewProxy(t, strings.TrimPrefix(u, "http://"), l.feed)
	base := "http://" + p.Addr()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{base + "/hello?x=1"}, `{"ok":true}`},
		{[]string{"-d", "hello body", "-H", "Content-Type: text/plain", base + "/echo"}, "got 10 bytes"},
		{[]string{base + "/big?n=20000"}, strings.Repeat("b", 20000)},
	} {
		if out := dbtest.Run(t, nil, curl, append([]string{"-sS", "--http2-prior-knowledge"}, c.args...)...); out != c.want {
			t.Fatalf("curl %v: %.100q", c.args, out)
		}
	}
	dbtest.Run(t, nil, nghttp, "-n", base+"/hello?x=2", base+"/hello?x=3")
	sides, counts := l.rows(p)
	for i, rows := range sides {
		if len(rows) != 5 {
			t.Fatalf("side %d: %d rows, want 5: %v", i+1, len(rows), rows)
		}
		checkH2CRows(t, rows)
		if len(counts[i]) != 0 {
			t.Errorf("side %d: counters %v", i+1, counts[i])
		}
	}
	for i, name := range []string{"curl_get", "curl_post", "curl_big", "nghttp"} {
		dbtest.Record(t, "testdata/"+name+".bin", l.chunks, i)
	}
}

// checkH2CRows checks the rows of TestH2CClients; nghttp's two rows may
// come in either order.
func checkH2CRows(t testing.TB, rows []row) {
	t.Helper()
	if rows[3]["req_path"] == "/hello?x=3" {
		rows[3], rows[4] = rows[4], rows[3]
	}
	for i, r := range rows {
		checkH2CRow(t, i, r)
	}
}

// checkH2CRow checks the row r of TestH2CClients's request i.
func checkH2CRow(t testing.TB, i int, r row) {
	t.Helper()
	want := []row{
		{"req_method": "GET", "req_path": "/hello?x=1", "resp_body": `{"ok":true}`, "resp_body_size": int64(11), "content_type": int64(1), "req_body": "", "req_body_size": int64(0)},
		{"req_method": "POST", "req_path": "/echo", "req_body": "hello body", "req_body_size": int64(10), "resp_body": "got 10 bytes", "resp_body_size": int64(12), "content_type": int64(0)},
		{"req_method": "GET", "req_path": "/big?n=20000", "resp_body": strings.Repeat("b", 1024), "resp_body_size": int64(20000), "content_type": int64(0)},
		{"req_method": "GET", "req_path": "/hello?x=2", "resp_body": `{"ok":true}`, "resp_body_size": int64(11), "content_type": int64(1)},
		{"req_method": "GET", "req_path": "/hello?x=3", "resp_body": `{"ok":true}`, "resp_body_size": int64(11), "content_type": int64(1)},
	}[i]
	want["major_version"], want["minor_version"], want["resp_status"], want["resp_message"] = int64(2), int64(0), int64(200), "OK"
	for k, v := range want {
		if r[k] != v {
			t.Errorf("row %d: %s = %#.80v, want %#.80v", i, k, r[k], v)
		}
	}
	req, resp := headersOf(t, r, "req_headers"), headersOf(t, r, "resp_headers")
	agent := "curl/"
	if i >= 3 {
		agent = "nghttp2/"
	}
	if req[":method"] != r["req_method"] || req[":path"] != r["req_path"] || req[":scheme"] != "http" ||
		!strings.HasPrefix(req["user-agent"], agent) || req["accept"] != "*/*" || !strings.HasPrefix(req[":authority"], "127.0.0.1:") {
		t.Errorf("row %d: req_headers %v", i, req)
	}
	if resp[":status"] != "200" || resp["date"] == "" || (want["content_type"] == int64(1) && resp["x-test"] != "yes") {
		t.Errorf("row %d: resp_headers %v", i, resp)
	}
	if lat := r["latency"].(int64); lat <= 0 || lat > int64(10*time.Second) {
		t.Errorf("row %d: latency %d", i, lat)
	}
}

// StartNghttpd serves dir with nghttp2's server (h2c) on a free port of
// 127.0.0.1 and returns the port and the server's pid. args are more
// options.
func StartNghttpd(t testing.TB, dir string, args ...string) (port, pid int) {
	t.Helper()
	bin := dbtest.Need(t, "nghttpd", "/usr/sbin")
	port = dbtest.FreePort(t)
	cmd := exec.Command(bin, append(append([]string{"--no-tls", "-d", dir}, args...), strconv.Itoa(port))...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		if out, err := dbtest.RunErr(nil, "curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "http://127.0.0.1:"+strconv.Itoa(port)+"/"); err == nil {
			return port, cmd.Process.Pid
		} else if i > 100 {
			t.Fatalf("nghttpd does not answer: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DocRoot makes a folder with a file "f" of n bytes.
func DocRoot(t testing.TB, n int) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte(strings.Repeat("n", n)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestH2load runs h2load against nghttpd: 2 connections, 10 concurrent
// streams on each, interleaved.
func TestH2load(t *testing.T) {
	h2load := dbtest.Need(t, "h2load")
	port, _ := StartNghttpd(t, DocRoot(t, 100))
	l := newLive(t)
	p := dbtest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(port), l.feed)
	out := dbtest.Run(t, nil, h2load, "-n", "200", "-c", "2", "-m", "10", "http://"+p.Addr()+"/f")
	if !strings.Contains(out, "200 succeeded") {
		t.Fatalf("h2load: %s", out)
	}
	sides, counts := l.rows(p)
	for i, rows := range sides {
		if len(rows) != 200 {
			t.Fatalf("side %d: %d rows, want 200 (counters %v)", i+1, len(rows), counts[i])
		}
		for _, r := range rows {
			if r["req_path"] != "/f" || r["resp_status"] != int64(200) || r["resp_body_size"] != int64(100) || r["req_method"] != "GET" {
				t.Fatalf("side %d: row %v", i+1, r)
			}
		}
		if len(counts[i]) != 0 {
			t.Errorf("side %d: counters %v", i+1, counts[i])
		}
	}
	dbtest.Record(t, "testdata/h2load.bin", l.chunks, 0)
}

// TestPushPaddingContinuation has nghttpd push a file with the one asked
// for, both peers padding their frames, and curl send a header block
// larger than a frame (HEADERS then CONTINUATION).
func TestPushPaddingContinuation(t *testing.T) {
	nghttp := dbtest.Need(t, "nghttp")
	dir := DocRoot(t, 100)
	if err := os.WriteFile(filepath.Join(dir, "g"), []byte("pushed"), 0o644); err != nil {
		t.Fatal(err)
	}
	port, _ := StartNghttpd(t, dir, "-b", "20", "-p", "/f=/g")
	l := newLive(t)
	p := dbtest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(port), l.feed)
	dbtest.Run(t, nil, nghttp, "-n", "-b", "20", "http://"+p.Addr()+"/f")
	u := StartH2CServer(t)
	l2 := newLive(t)
	l2.cfg.MaxHeaderBytes = 32 << 10
	p2 := dbtest.NewProxy(t, strings.TrimPrefix(u, "http://"), l2.feed)
	big := []string{strings.Repeat("a", 15000), strings.Repeat("b", 15000)}
	dbtest.Run(t, nil, dbtest.Need(t, "curl"), "-sS", "--http2-prior-knowledge", "-H", "x-a: "+big[0], "-H", "x-b: "+big[1], "http://"+p2.Addr()+"/hello")
	sides, counts := l.rows(p)
	sides2, counts2 := l2.rows(p2)
	if n := frames(l.chunks, false)[framePushPromise]; n != 1 {
		t.Errorf("%d PUSH_PROMISE frames, want 1", n)
	}
	if n := frames(l2.chunks, true)[frameContinuation]; n != 1 {
		t.Errorf("curl sent %d CONTINUATION frames, want 1", n)
	}
	for i, rows := range sides {
		rows = append(rows, sides2[i]...)
		for k, v := range counts2[i] {
			counts[i][k] += v
		}
		if len(rows) != 3 {
			t.Fatalf("side %d: %d rows, want 3 (counters %v)", i+1, len(rows), counts[i])
		}
		if rows[0]["req_path"] == "/g" {
			rows[0], rows[1] = rows[1], rows[0]
		}
		for j, want := range []row{
			{"req_method": "GET", "req_path": "/f", "resp_status": int64(200), "resp_body": strings.Repeat("n", 100), "resp_body_size": int64(100)},
			{"req_method": "GET", "req_path": "/g", "resp_status": int64(200), "resp_body": "pushed", "resp_body_size": int64(6)},
			{"req_method": "GET", "req_path": "/hello", "resp_status": int64(200), "resp_body": `{"ok":true}`},
		} {
			for k, v := range want {
				if rows[j][k] != v {
					t.Errorf("side %d row %d: %s = %#v, want %#v", i+1, j, k, rows[j][k], v)
				}
			}
		}
		if h := headersOf(t, rows[1], "req_headers"); h[":path"] != "/g" || h[":scheme"] != "http" {
			t.Errorf("side %d: pushed request headers %v", i+1, h)
		}
		if h := headersOf(t, rows[2], "req_headers"); h["x-a"] != big[0] || h["x-b"] != big[1] {
			t.Errorf("side %d: the header block split in frames lost headers: %d %d bytes", i+1, len(h["x-a"]), len(h["x-b"]))
		}
		if len(counts[i]) != 0 {
			t.Errorf("side %d: counters %v", i+1, counts[i])
		}
	}
	dbtest.Record(t, "testdata/nghttp_push_padding.bin", l.chunks, 0)
	dbtest.Record(t, "testdata/curl_continuation.bin", l2.chunks, 0)
}

// frames counts the frames of each type that one side of connection 0
// sent.
func frames(chunks []dbtest.Chunk, client bool) map[frameType]int {
	var b []byte
	for _, c := range chunks {
		if c.Conn == 0 && c.ToServer == client {
			b = append(b, c.Data...)
		}
	}
	if client {
		b = b[len(preface):]
	}
	n := map[frameType]int{}
	for len(b) >= frameHeaderLen {
		h := parseFrameHeader(b)
		n[h.typ]++
		b = b[min(len(b), frameHeaderLen+h.length):]
	}
	return n
}

// TestH2loadNoTable runs h2load against nghttpd with both encoders told
// to keep no dynamic table: every header is a literal or in the static
// table, so that a connection seen mid-stream decodes from its next
// header block on (TestMidStream).
func TestH2loadNoTable(t *testing.T) {
	h2load := dbtest.Need(t, "h2load")
	port, _ := StartNghttpd(t, DocRoot(t, 100), "--encoder-header-table-size=0", "--header-table-size=0")
	l := newLive(t)
	p := dbtest.NewProxy(t, "127.0.0.1:"+strconv.Itoa(port), l.feed)
	out := dbtest.Run(t, nil, h2load, "--encoder-header-table-size=0", "--header-table-size=0", "-n", "60", "-c", "1", "-m", "4", "http://"+p.Addr()+"/f")
	if !strings.Contains(out, "60 succeeded") {
		t.Fatalf("h2load: %s", out)
	}
	sides, counts := l.rows(p)
	for i, rows := range sides {
		if len(rows) != 60 {
			t.Fatalf("side %d: %d rows, want 60 (counters %v)", i+1, len(rows), counts[i])
		}
		if len(counts[i]) != 0 {
			t.Errorf("side %d: counters %v", i+1, counts[i])
		}
	}
	dbtest.Record(t, "testdata/h2load_notable.bin", l.chunks, 0)
}
