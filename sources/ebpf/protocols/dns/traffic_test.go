package dns_test

// Real traffic: Go's resolver against DNS servers on 127.0.0.1, over UDP
// and TCP, traced by the socket tracer.

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

func TestDNS(t *testing.T) {
	_, store := ebpftest.Tracer(t, ebpf.Config{})
	srv := ebpftest.DNSServer(t)
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
	cl := ebpftest.WaitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
		return r["trace_role"] == int64(1) && r["remote_port"] == int64(port)
	})
	// Server side: unconnected socket, role 2, peer from recvfrom.
	sv := ebpftest.WaitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
		return r["trace_role"] == int64(2) && r["local_port"] == int64(port)
	})
	if len(cl) != 1 || len(sv) != 1 {
		t.Fatalf("client rows %d, server rows %d: %v", len(cl), len(sv), ebpftest.Rows(t, store, "dns_events"))
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
	_, store := ebpftest.Tracer(t, ebpf.Config{})
	ln := ebpftest.DNSServerTCP(t)
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
		got := ebpftest.WaitRows(t, store, "dns_events", 1, 5*time.Second, func(r map[string]any) bool {
			return r["trace_role"] == side.role && r[side.col] == int64(port)
		})
		if len(got) != 1 {
			t.Fatalf("role %d: %d rows: %v", side.role, len(got), ebpftest.Rows(t, store, "dns_events"))
		}
		if !strings.Contains(got[0]["req_body"].(string), "tcp.pxq.test") || !strings.Contains(got[0]["resp_body"].(string), "10.1.2.3") {
			t.Errorf("role %d: req %v resp %v", side.role, got[0]["req_body"], got[0]["resp_body"])
		}
		if got[0]["latency"].(int64) <= 0 {
			t.Errorf("role %d: latency %v", side.role, got[0]["latency"])
		}
	}
}
