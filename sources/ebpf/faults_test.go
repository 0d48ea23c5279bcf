package ebpf

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// dnsResponder answers A queries for any name with 10.1.2.3 and other
// types with no records, on an unconnected UDP socket (recvfrom/sendto).
func dnsResponder(t *testing.T) *net.UDPConn {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n]); resp != nil {
				pc.WriteToUDP(resp, from)
			}
		}
	}()
	return pc
}

// dnsTCPResponder answers DNS over TCP (each message after its 2-byte
// length) on 127.0.0.1.
func dnsTCPResponder(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var l [2]byte
				for {
					if _, err := io.ReadFull(c, l[:]); err != nil {
						return
					}
					q := make([]byte, binary.BigEndian.Uint16(l[:]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					resp := dnsAnswer(q)
					if resp == nil {
						return
					}
					out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
					c.Write(append(out, resp...))
				}
			}()
		}
	}()
	return ln
}

// dnsAnswer answers an A query for any name with 10.1.2.3 (other types
// with no records), or returns nil for a malformed query.
func dnsAnswer(q []byte) []byte {
	n := len(q)
	if n < 12 {
		return nil
	}
	// Question: name up to its zero byte, then type and class.
	end := 12
	for end < n && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5
	if end > n {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	resp := append([]byte(nil), q[:end]...)
	resp[2] |= 0x80 // QR
	resp[3] = 0x80  // RA, rcode 0
	binary.BigEndian.PutUint16(resp[10:], 0)
	binary.BigEndian.PutUint16(resp[8:], 0)
	if qtype == 1 {
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3)
	} else {
		binary.BigEndian.PutUint16(resp[6:], 0)
	}
	return resp
}

func TestDNS(t *testing.T) {
	_, store := newTestTracer(t, Config{})
	srv := dnsResponder(t)
	port := srv.LocalAddr().(*net.UDPAddr).Port
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return net.Dial("udp", srv.LocalAddr().String())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := r.LookupIP(ctx, "ip4", "svc.pxq.test")
	if err != nil || len(ips) != 1 || ips[0].String() != "10.1.2.3" {
		t.Fatalf("lookup: %v %v", ips, err)
	}
	// Client side: a connected socket, role 1, peer = the responder.
	cl := waitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
		return r["trace_role"] == int64(1) && r["remote_port"] == int64(port)
	})
	// Server side: unconnected socket, role 2, peer from recvfrom.
	sv := waitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
		return r["trace_role"] == int64(2) && r["local_port"] == int64(port)
	})
	if len(cl) != 1 || len(sv) != 1 {
		t.Fatalf("client rows %d, server rows %d: %v", len(cl), len(sv), rows(store, "dns_events"))
	}
	for _, row := range []map[string]any{cl[0], sv[0]} {
		var q struct {
			Queries []struct{ Name, Type string }
		}
		var a struct {
			Answers []struct{ Name, Type, Addr string }
		}
		var h struct {
			TxID       int  `json:"txid"`
			QR         bool `json:"qr"`
			NumAnswers int  `json:"num_answers"`
		}
		json.Unmarshal([]byte(row["req_body"].(string)), &q)
		json.Unmarshal([]byte(row["resp_body"].(string)), &a)
		json.Unmarshal([]byte(row["resp_header"].(string)), &h)
		if len(q.Queries) != 1 || q.Queries[0].Name != "svc.pxq.test" || q.Queries[0].Type != "A" {
			t.Errorf("req_body %v", row["req_body"])
		}
		if len(a.Answers) != 1 || a.Answers[0].Addr != "10.1.2.3" || a.Answers[0].Type != "A" {
			t.Errorf("resp_body %v", row["resp_body"])
		}
		if !h.QR || h.NumAnswers != 1 {
			t.Errorf("resp_header %v", row["resp_header"])
		}
		if row["latency"].(int64) <= 0 || row["remote_addr"] != "127.0.0.1" {
			t.Errorf("latency %v remote %v", row["latency"], row["remote_addr"])
		}
	}
	if cl[0]["local_port"] != sv[0]["remote_port"] {
		t.Errorf("client port %v, server saw %v", cl[0]["local_port"], sv[0]["remote_port"])
	}
}

// TestDNSOverTCP resolves through a TCP DNS server (length-prefixed
// messages on a stream) and checks both sides' rows.
func TestDNSOverTCP(t *testing.T) {
	_, store := newTestTracer(t, Config{})
	ln := dnsTCPResponder(t)
	port := ln.Addr().(*net.TCPAddr).Port
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return net.Dial("tcp", ln.Addr().String()) // not a PacketConn: the resolver frames messages
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := r.LookupIP(ctx, "ip4", "tcp.pxq.test")
	if err != nil || len(ips) != 1 || ips[0].String() != "10.1.2.3" {
		t.Fatalf("lookup: %v %v", ips, err)
	}
	for _, side := range []struct {
		role int64
		col  string
	}{{1, "remote_port"}, {2, "local_port"}} {
		got := waitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
			return r["trace_role"] == side.role && r[side.col] == int64(port)
		})
		if len(got) != 1 {
			t.Fatalf("role %d: %d rows: %v", side.role, len(got), rows(store, "dns_events"))
		}
		if !strings.Contains(got[0]["req_body"].(string), "tcp.pxq.test") || !strings.Contains(got[0]["resp_body"].(string), "10.1.2.3") {
			t.Errorf("role %d: req %v resp %v", side.role, got[0]["req_body"], got[0]["resp_body"])
		}
		if got[0]["latency"].(int64) <= 0 {
			t.Errorf("role %d: latency %v", side.role, got[0]["latency"])
		}
	}
}

// TestFaults drives the failures the tracer must survive and count: garbage
// and unknown protocols, a connection closed before its response, a
// process dying mid-request, and a ring buffer too small for the traffic.
func TestFaults(t *testing.T) {
	tr, store := newTestTracer(t, Config{OnlyPIDs: []uint32{}, InferSegments: 2, StatsPeriod: 100 * time.Millisecond})
	srv, port := testServer(t)

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
	for _, r := range rows(store, "http_events") {
		if r["req_path"] == "/slow" && r["trace_role"] == int64(1) {
			t.Errorf("client row for an abandoned request: %v", r)
		}
	}
	errs := rows(store, "stirling_error")
	if len(errs) == 0 || !strings.Contains(errs[len(errs)-1]["context"].(string), "unknown_protocol_conns") {
		t.Errorf("counters missing from stirling_error")
	}
}

func TestRingBufferFull(t *testing.T) {
	// One page of ring buffer read every 200 ms: a flood loses most events.
	tr, store := newTestTracer(t, Config{RingBufferBytes: uint32(os.Getpagesize()), PollInterval: 200 * time.Millisecond})
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
	for i := 0; i < 50; i++ {
		get("/big?n=20000")
	}
	// Then requests slow enough for the ring: the parsers must find their
	// way back after the gaps on the same keep-alive connection.
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		get(fmt.Sprintf("/hello?after=%d", i))
	}
	got := waitRows(t, store, "http_events", 6, 3*time.Second, func(r map[string]any) bool {
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
	for _, r := range rows(store, "http_events") {
		if r["resp_status"] != int64(200) || (r["remote_port"] != int64(port) && r["local_port"] != int64(port)) {
			t.Errorf("bad row after losses: %v", r)
		}
	}
	t.Logf("lost %d events (%d bytes), gap bytes %d, %d rows", s.LostEvents, s.LostEventBytes, s.GapBytes, len(rows(store, "http_events")))
}

// TestRingWrapsAround: a 64 KiB ring read in place carries several times
// its size; records that wrap past its end must arrive whole and in order.
func TestRingWrapsAround(t *testing.T) {
	tr, store := newTestTracer(t, Config{RingBufferBytes: 64 << 10, PollInterval: time.Millisecond})
	srv, port := testServer(t)
	c := newClient()
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
	got := waitRows(t, store, "http_events", n, 5*time.Second, serverRow(port))
	if s := tr.Stats(); s.LostEvents != 0 || s.DataBytes < 4*(64<<10) {
		t.Fatalf("want no lost events and several rings' worth of data: %+v", s)
	}
	if len(got) != n {
		t.Fatalf("%d server rows, want %d", len(got), n)
	}
	for i, r := range got {
		expect(t, r, map[string]any{"req_path": fmt.Sprintf("/big?n=%d", 600+i), "resp_status": int64(200),
			"resp_body": string(bigBody(600 + i)), "resp_body_size": int64(600 + i)})
	}
}
