// Package ebpftest runs the socket tracer for real-traffic tests: the
// tracer's own tests and each protocol's (a protocol package's
// traffic_test.go). Servers on 127.0.0.1 give the tests something to
// trace.
package ebpftest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/table"
)

// Tracer starts a tracer that traces the test's process (and only it,
// unless cfg says otherwise), and closes it when the test ends. Without
// root or BPF it skips, saying why, or under CI=true fails
// (testenv.SkipOrFail), so that CI cannot pass having traced nothing.
func Tracer(t testing.TB, cfg ebpf.Config) (*ebpf.Tracer, *table.Store) {
	t.Helper()
	testenv.RequireRoot(t, "load BPF programs and attach tracepoints")
	cfg.TraceSelf = true
	if cfg.OnlyPIDs == nil {
		cfg.OnlyPIDs = []uint32{uint32(os.Getpid())}
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	store := table.NewStore(0)
	tr, err := ebpf.New(cfg, store)
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") || strings.Contains(err.Error(), "tracefs") {
			testenv.SkipOrFail(t, "cannot load the tracer here: "+err.Error())
		}
		t.Fatalf("ebpf.New: %v", err)
	}
	tr.Start(t.Context())
	t.Cleanup(func() { tr.Close() })
	// Tests start programs before the tracer whose TLS they expect seen.
	if err := tr.WaitTLSScan(t.Context()); err != nil {
		t.Fatal(err)
	}
	return tr, store
}

// Rows returns a table's rows as maps from column name to Go value
// (int64, string, bool, types.UInt128Value; times as int64 ns).
func Rows(t testing.TB, store *table.Store, name string) []map[string]any {
	t.Helper()
	return protocoltest.TableRows(t, store.Table(name))
}

// WaitRows polls until keep selects at least n rows of the table, or the
// timeout passes; it returns the selected rows.
func WaitRows(t testing.TB, store *table.Store, name string, n int, timeout time.Duration, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []map[string]any
		for _, r := range Rows(t, store, name) {
			if keep(r) {
				got = append(got, r)
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Expect checks the named columns of a row.
func Expect(t testing.TB, r map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v (row path %v role %v)", k, r[k], v, r["req_path"], r["trace_role"])
		}
	}
}

// HTTPServer is a Go net/http server on 127.0.0.1 with the handlers the
// tests call: /hello (JSON), /echo (the request body's size), /chunked,
// /big?n=N (N bytes), /slow (300 ms). It returns the server and its port.
func HTTPServer(t testing.TB) (*httptest.Server, int) {
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
		w.Write(BigBody(n))
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

// BigBody is /big's body of n bytes.
func BigBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// HTTPClient is a client that keeps its connections alive and does not
// compress.
func HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}
}

// ServerRow selects the rows of the server side of port.
func ServerRow(port int) func(map[string]any) bool {
	return func(r map[string]any) bool { return r["local_port"] == int64(port) && r["trace_role"] == int64(2) }
}

// ClientRow selects the rows of the client side of port.
func ClientRow(port int) func(map[string]any) bool {
	return func(r map[string]any) bool { return r["remote_port"] == int64(port) && r["trace_role"] == int64(1) }
}

// DNSServer answers A queries for any name with 10.1.2.3 and other types
// with no records, on an unconnected UDP socket on 127.0.0.1
// (recvfrom/sendto).
func DNSServer(t testing.TB) *net.UDPConn {
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
			if resp := DNSAnswer(buf[:n]); resp != nil {
				pc.WriteToUDP(resp, from)
			}
		}
	}()
	return pc
}

// DNSServerTCP answers DNS over TCP (each message after its 2-byte
// length) on 127.0.0.1.
func DNSServerTCP(t testing.TB) net.Listener {
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
					resp := DNSAnswer(q)
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

// DNSQuery is an A query with id for svc.pxq.test.
func DNSQuery(id uint16) []byte {
	q := []byte("\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03svc\x03pxq\x04test\x00\x00\x01\x00\x01")
	binary.BigEndian.PutUint16(q, id)
	return q
}

// DNSAnswer answers an A query for any name with 10.1.2.3 (other types
// with no records), or returns nil for a malformed query.
func DNSAnswer(q []byte) []byte {
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
