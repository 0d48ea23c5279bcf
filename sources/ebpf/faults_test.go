package ebpf_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

// TestFaults drives the failures the tracer must survive and count: garbage
// and unknown protocols, a connection closed before its response, a
// process dying mid-request, and a ring buffer too small for the traffic.
func TestFaults(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}, InferSegments: 2, StatsPeriod: 100 * time.Millisecond})
	srv, port := ebpftest.HTTPServer(t)

	// Garbage bytes to a raw TCP echo: never HTTP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	g, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for i := 0; i < 4; i++ {
		fmt.Fprintf(g, "\x00\xff garbage %d \r\n\r\n", i)
		g.Read(buf)
	}
	g.Close()

	// A request whose connection closes before the response.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	c.Close()

	// A process that dies in the middle of a request: curl with a 50 ms
	// timeout on a handler that takes 300 ms exits with the request open.
	if curl, err := exec.LookPath("curl"); err == nil {
		exec.Command(curl, "-s", "-m", "0.05", srv.URL+"/slow").Run()
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		s := tr.Stats()
		if (s.UnknownProtocolConns >= 1 && s.Counters["http.closed_before_response"] >= 1) || time.Now().After(deadline) {
			if s.UnknownProtocolConns < 1 {
				t.Errorf("garbage connection not counted as unknown protocol: %+v", s)
			}
			if s.Counters["http.closed_before_response"] < 1 {
				t.Errorf("closed-before-response not counted: %+v", s.Counters)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The server side of /slow still answers into closed sockets; the
	// tracer must not emit rows for the abandoned requests.
	time.Sleep(400 * time.Millisecond)
	for _, r := range ebpftest.Rows(t, store, "http_events") {
		if r["req_path"] == "/slow" && r["trace_role"] == int64(1) {
			t.Errorf("client row for an abandoned request: %v", r)
		}
	}
	errs := ebpftest.Rows(t, store, "stirling_error")
	if len(errs) == 0 || !strings.Contains(errs[len(errs)-1]["context"].(string), "unknown_protocol_conns") {
		t.Errorf("counters missing from stirling_error")
	}
}

func TestRingBufferFull(t *testing.T) {
	// One page of ring buffer read every 200 ms: a flood loses most events.
	tr, store := ebpftest.Tracer(t, ebpf.Config{AllClientSides: true, RingBufferBytes: uint32(os.Getpagesize()), PollInterval: 200 * time.Millisecond})
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
	for i := 0; i < 50; i++ {
		get("/big?n=20000")
	}
	// Then requests slow enough for the ring: the parsers must find their
	// way back after the gaps on the same keep-alive connection.
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		get(fmt.Sprintf("/hello?after=%d", i))
	}
	got := ebpftest.WaitRows(t, store, "http_events", 6, 3*time.Second, func(r map[string]any) bool {
		return strings.HasPrefix(r["req_path"].(string), "/hello?after=")
	})
	s := tr.Stats()
	if s.LostEvents == 0 {
		t.Fatalf("no lost events counted with a one-page ring buffer: %+v", s)
	}
	if s.GapBytes == 0 {
		t.Errorf("lost events did not show as stream gaps: %+v", s)
	}
	if len(got) != 6 {
		t.Errorf("%d rows for the requests after the flood, want 6 (client and server): %+v", len(got), s)
	}
	for _, r := range ebpftest.Rows(t, store, "http_events") {
		if r["resp_status"] != int64(200) || (r["remote_port"] != int64(port) && r["local_port"] != int64(port)) {
			t.Errorf("bad row after losses: %v", r)
		}
	}
	t.Logf("lost %d events (%d bytes), gap bytes %d, %d rows", s.LostEvents, s.LostEventBytes, s.GapBytes, len(ebpftest.Rows(t, store, "http_events")))
}

// TestRingWrapsAround: a 64 KiB ring read in place carries several times
// its size; records that wrap past its end must arrive whole and in order.
func TestRingWrapsAround(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{RingBufferBytes: 64 << 10, PollInterval: time.Millisecond})
	srv, port := ebpftest.HTTPServer(t)
	c := ebpftest.HTTPClient()
	const n = 300
	for i := 0; i < n; i++ {
		resp, err := c.Get(fmt.Sprintf("%s/big?n=%d", srv.URL, 600+i))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		time.Sleep(time.Millisecond) // slow enough for the ring: nothing lost
	}
	got := ebpftest.WaitRows(t, store, "http_events", n, 5*time.Second, ebpftest.ServerRow(port))
	if s := tr.Stats(); s.LostEvents != 0 || s.DataBytes < 4*(64<<10) {
		t.Fatalf("want no lost events and several rings' worth of data: %+v", s)
	}
	if len(got) != n {
		t.Fatalf("%d server rows, want %d", len(got), n)
	}
	for i, r := range got {
		ebpftest.Expect(t, r, map[string]any{"req_path": fmt.Sprintf("/big?n=%d", 600+i), "resp_status": int64(200),
			"resp_body": string(ebpftest.BigBody(600 + i)), "resp_body_size": int64(600 + i)})
	}
}
