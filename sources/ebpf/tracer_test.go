package ebpf_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

func TestConnStatsAndReports(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{ConnStatsPeriod: 100 * time.Millisecond, StatsPeriod: 200 * time.Millisecond})
	srv, port := ebpftest.HTTPServer(t)
	c := ebpftest.HTTPClient()
	for i := 0; i < 3; i++ {
		resp, err := c.Get(srv.URL + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	c.CloseIdleConnections()
	got := ebpftest.WaitRows(t, store, "conn_stats", 1, 5*time.Second, func(r map[string]any) bool {
		return r["remote_port"] == int64(port) && r["trace_role"] == int64(1) && r["conn_close"] == int64(1)
	})
	if len(got) == 0 {
		t.Fatalf("no closed client conn_stats row for port %d: %v", port, ebpftest.Rows(t, store, "conn_stats"))
	}
	r := got[len(got)-1]
	ebpftest.Expect(t, r, map[string]any{"remote_addr": "127.0.0.1", "addr_family": int64(2), "protocol": int64(1),
		"conn_open": int64(1), "conn_active": int64(0), "ssl": false})
	if r["bytes_sent"].(int64) < 3*40 || r["bytes_recv"].(int64) < 3*100 {
		t.Errorf("bytes sent %v recv %v", r["bytes_sent"], r["bytes_recv"])
	}
	errs := ebpftest.WaitRows(t, store, "stirling_error", 1, 5*time.Second, func(r map[string]any) bool {
		return r["source_connector"] == ebpf.SourceName && strings.Contains(r["context"].(string), `"bpf_events"`)
	})
	if len(errs) == 0 {
		t.Fatal("no stirling_error row")
	}
	var ctx ebpf.Stats
	if err := json.Unmarshal([]byte(errs[len(errs)-1]["context"].(string)), &ctx); err != nil {
		t.Fatalf("context: %v", err)
	}
	probes := ebpftest.Rows(t, store, "probe_status")
	ok := 0
	for _, p := range probes {
		if p["status"] == int64(0) {
			ok++
		}
	}
	if ok < ebpf.NumHooks(tr) {
		t.Errorf("%d probes attached ok, want all %d: %v", ok, ebpf.NumHooks(tr), probes)
	}
}

// The tracer reads syscall arguments from the saved registers at exit.
// write(2) has three: whatever the caller left in the fifth argument's
// register (r8 on x86-64) must not be taken for a sendto address, or a
// connected UDP socket's query would be filed under a made-up peer.
func TestWriteIgnoresUnusedArgumentRegisters(t *testing.T) {
	_, store := ebpftest.Tracer(t, ebpf.Config{})
	srv := ebpftest.DNSServer(t)
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
	got := ebpftest.WaitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
		return r["trace_role"] == int64(1)
	})
	if len(got) != 1 {
		t.Fatalf("%d client rows, want 1: %v", len(got), ebpftest.Rows(t, store, "dns_events"))
	}
	ebpftest.Expect(t, got[0], map[string]any{"remote_addr": "127.0.0.1", "remote_port": int64(port)})
}

// TestPauseResume: nothing is captured while paused, and a keep-alive
// connection that lived through the pause is picked up again on Resume
// (as a connection that predates the tracer), request by request.
func TestPauseResume(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{})
	srv, port := ebpftest.HTTPServer(t)
	c := ebpftest.HTTPClient()
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
		return func(r map[string]any) bool { return ebpftest.ServerRow(port)(r) && r["req_path"] == p }
	}
	get("/hello?before")
	if got := ebpftest.WaitRows(t, store, "http_events", 1, 5*time.Second, path("/hello?before")); len(got) != 1 {
		t.Fatalf("before the pause: %d rows, want 1", len(got))
	}
	tr.Pause()
	tr.Pause() // a second Pause is a no-op
	get("/hello?paused")
	if err := tr.Resume(); err != nil {
		t.Fatal(err)
	}
	get("/hello?after")
	got := ebpftest.WaitRows(t, store, "http_events", 1, 5*time.Second, path("/hello?after"))
	if len(got) != 1 {
		t.Fatalf("after Resume: %d rows of /hello?after, want 1", len(got))
	}
	ebpftest.Expect(t, got[0], map[string]any{"resp_status": int64(200), "resp_body": `{"ok":true}`})
	if n := len(ebpftest.WaitRows(t, store, "http_events", 1, 200*time.Millisecond, path("/hello?paused"))); n != 0 {
		t.Errorf("%d rows captured while paused, want 0", n)
	}
	for _, p := range ebpftest.Rows(t, store, "probe_status") {
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

// TestConnStatsUDPPeers: unconnected UDP sockets (sendto/recvfrom) get
// conn_stats rows per peer, with the peer's address and port and its own
// bytes, on the client side and on the server side; none with the
// unconnected socket's 0.0.0.0:0. One client socket queries two servers.
func TestConnStatsUDPPeers(t *testing.T) {
	_, store := ebpftest.Tracer(t, ebpf.Config{ConnStatsPeriod: 100 * time.Millisecond})
	srvs := []*net.UDPConn{ebpftest.DNSServer(t), ebpftest.DNSServer(t)}
	cl, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	clPort := int64(cl.LocalAddr().(*net.UDPAddr).Port)
	const queries = 3
	q := ebpftest.DNSQuery(1)
	answer := ebpftest.DNSAnswer(q)
	buf := make([]byte, 512)
	for i := 0; i < queries; i++ {
		for _, s := range srvs {
			if _, err := cl.WriteToUDP(q, s.LocalAddr().(*net.UDPAddr)); err != nil {
				t.Fatal(err)
			}
			cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := cl.ReadFromUDP(buf)
			if err != nil || from.Port != s.LocalAddr().(*net.UDPAddr).Port || n != len(answer) {
				t.Fatalf("answer %d bytes from %v: %v", n, from, err)
			}
		}
	}
	cl.Close()
	sent, recv := int64(queries*len(q)), int64(queries*len(answer))
	last := func(name string, keep func(map[string]any) bool) map[string]any {
		t.Helper()
		got := ebpftest.WaitRows(t, store, "conn_stats", 1, 5*time.Second, keep)
		if len(got) == 0 {
			all := ebpftest.Rows(t, store, "conn_stats")
			t.Fatalf("%s: no row; the last ones: %v", name, all[max(0, len(all)-4):])
		}
		return got[len(got)-1]
	}
	// The client: one group per server, closed with the socket.
	for _, s := range srvs {
		port := int64(s.LocalAddr().(*net.UDPAddr).Port)
		r := last(fmt.Sprintf("client to port %d", port), func(r map[string]any) bool {
			return r["trace_role"] == int64(1) && r["remote_port"] == port && r["conn_close"] == int64(1)
		})
		ebpftest.Expect(t, r, map[string]any{"remote_addr": "127.0.0.1", "addr_family": int64(2), "protocol": int64(6),
			"conn_open": int64(1), "conn_active": int64(0), "bytes_sent": sent, "bytes_recv": recv})
	}
	// The servers (two sockets of this process) both talked to the
	// client's port: one group, two connections, still open.
	r := last("servers", func(r map[string]any) bool {
		return r["trace_role"] == int64(2) && r["remote_port"] == clPort && r["bytes_sent"] == 2*recv
	})
	ebpftest.Expect(t, r, map[string]any{"remote_addr": "127.0.0.1", "addr_family": int64(2), "protocol": int64(6),
		"conn_open": int64(2), "conn_active": int64(2), "conn_close": int64(0), "bytes_recv": 2 * sent})
	for _, r := range ebpftest.Rows(t, store, "conn_stats") {
		if a := r["remote_addr"]; a == "0.0.0.0" || a == "" || a == "::" || r["remote_port"] == int64(0) {
			t.Errorf("a row without its peer: %v", r)
		}
	}
}

// TestLargeBodies: 1 MB bodies, both ends traced, with the BPF side's body
// skipping on and off. Every request is a row on each side, with the
// body's true size and its first MaxBodyBytes; nothing is lost. With
// skipping on, the bodies past the limit are counted, not copied; with
// it off every byte goes through the ring and the rows must be the same.
// The last requests are a HEAD, whose response's Content-Length
// describes no body, and a GET after it on the same connection.
func TestLargeBodies(t *testing.T) {
	for _, whole := range []bool{false, true} {
		t.Run(fmt.Sprintf("CopyWholeBodies=%v", whole), func(t *testing.T) {
			tr, store := ebpftest.Tracer(t, ebpf.Config{AllClientSides: true, CopyWholeBodies: whole, MaxBodyBytes: 1024})
			srv, port := ebpftest.HTTPServer(t)
			c := ebpftest.HTTPClient()
			const n, size = 40, 1 << 20
			body := ebpftest.BigBody(size)
			for i := 0; i < n; i++ {
				var resp *http.Response
				var err error
				switch {
				case i == n-2:
					resp, err = c.Head(fmt.Sprintf("%s/big?n=%d", srv.URL, size))
				case i%4 == 3:
					resp, err = c.Post(srv.URL+"/echo", "text/plain", bytes.NewReader(body))
				default:
					resp, err = c.Get(fmt.Sprintf("%s/big?n=%d", srv.URL, size))
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			c.CloseIdleConnections()
			for _, side := range []func(int) func(map[string]any) bool{ebpftest.ServerRow, ebpftest.ClientRow} {
				got := ebpftest.WaitRows(t, store, "http_events", n, 5*time.Second, side(port))
				if len(got) != n {
					t.Fatalf("%d rows, want %d", len(got), n)
				}
				for _, r := range got {
					if r["req_method"] == "HEAD" {
						ebpftest.Expect(t, r, map[string]any{"resp_body_size": int64(0), "resp_body": "", "resp_status": int64(200)})
					} else if r["req_path"] == "/echo" {
						ebpftest.Expect(t, r, map[string]any{"req_body_size": int64(size), "req_body": string(body[:1024]),
							"resp_body": fmt.Sprintf("got %d bytes", size), "resp_status": int64(200)})
					} else {
						ebpftest.Expect(t, r, map[string]any{"resp_body_size": int64(size), "resp_body": string(body[:1024]), "resp_status": int64(200)})
					}
				}
			}
			st := tr.Stats()
			if st.LostEvents != 0 {
				t.Errorf("lost_events %d, want 0", st.LostEvents)
			}
			// Skipped, each body on each side but for the first kept KiB
			// and the bytes of calls too small to be scanned; not the
			// HEAD's nor the response after it on its connection.
			if want := uint64(2 * (n - 2) * (size - 8<<10)); !whole && st.SkippedBodyBytes < want {
				t.Errorf("skipped_body_bytes %d, want at least %d", st.SkippedBodyBytes, want)
			}
			if whole && st.SkippedBodyBytes != 0 {
				t.Errorf("skipped_body_bytes %d with CopyWholeBodies", st.SkippedBodyBytes)
			}
			t.Logf("bpf events %d, skipped body bytes %d, truncated %d", st.BPFEvents, st.SkippedBodyBytes, st.TruncatedBytes)
		})
	}
}
