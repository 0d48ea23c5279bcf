package tls_test

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testcert"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

// TestNodeHTTPS traces Node.js's https (and http2) server and client,
// both traced:
// Node links OpenSSL statically and feeds it through memory BIOs, so its
// SSL calls make no socket syscall; each SSL object's socket is the one
// the thread read the records from just before (docs/sources.md). Every
// request is one row, the server's, decrypted, on the right connection;
// with AllClientSides the client's too.
func TestNodeHTTPS(t *testing.T) {
	node := need(t, "node")
	for _, tc := range []struct {
		proto string // "" for HTTP/1.1, "h2"
		all   bool
	}{{"", false}, {"", true}, {"h2", false}, {"h2", true}} {
		name := "http1.1"
		if tc.proto != "" {
			name = tc.proto
		}
		all, major := tc.all, int64(1)
		if tc.proto == "h2" {
			major = 2
		}
		t.Run(fmt.Sprintf("%s/AllClientSides=%v", name, all), func(t *testing.T) {
			cert, key := testcert.Files(t, t.TempDir())
			srv := exec.Command(node, "testdata/node_https.js", tc.proto+"server", key, cert)
			out, _ := srv.StdoutPipe()
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
			lines := bufio.NewScanner(out)
			var port int
			if !lines.Scan() {
				t.Fatal("the node server did not start")
			}
			if _, err := fmt.Sscanf(lines.Text(), "port %d", &port); err != nil {
				t.Fatalf("node server said %q", lines.Text())
			}
			const n = 6
			cli := exec.Command(node, "testdata/node_https.js", tc.proto+"client", strconv.Itoa(port), strconv.Itoa(n))
			stdin, _ := cli.StdinPipe()
			cout, _ := cli.StdoutPipe()
			if err := cli.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cli.Process.Kill(); cli.Wait() })
			tr, store := traceAll(t, ebpf.Config{AllClientSides: all})
			io.WriteString(stdin, "go\n")
			got, _ := io.ReadAll(cout)
			if err := cli.Wait(); err != nil || strings.Count(string(got), "200 ") != n {
				t.Fatalf("node client: %v: %s", err, got)
			}
			sv := ebpftest.WaitRows(t, store, "http_events", n, 5*time.Second, rowsOf(srv.Process.Pid, port))
			if len(sv) != n {
				t.Fatalf("%d server rows, want %d (counters %v): %v", len(sv), n, tr.Stats().Counters, ebpftest.Rows(t, store, "http_events"))
			}
			for i, r := range sv {
				method, size := "GET", 0
				if i%2 == 1 {
					method, size = "POST", 100*i
				}
				wantRowVersion(t, r, srv.Process.Pid, 2, port, method, "/node?i="+strconv.Itoa(i), 200, major)
				ebpftest.Expect(t, r, map[string]any{"req_body_size": int64(size),
					"resp_body": fmt.Sprintf(`{"path":"/node?i=%d","got":%d}`, i, size)})
			}
			cl := ebpftest.WaitRows(t, store, "http_events", 0, 0, rowsOf(cli.Process.Pid, port))
			if want := map[bool]int{false: 0, true: n}[all]; len(cl) != want {
				t.Errorf("%d client rows, want %d (counters %v): %v", len(cl), want, tr.Stats().Counters, cl)
			}
			for i, r := range cl {
				wantRowVersion(t, r, cli.Process.Pid, 1, port, sv[i]["req_method"].(string), sv[i]["req_path"].(string), 200, major)
			}
		})
	}
}
