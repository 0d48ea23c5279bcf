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

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

// TestNodeHTTPS traces Node.js's https server and client, both traced:
// Node links OpenSSL statically and feeds it through memory BIOs, so its
// SSL calls make no socket syscall; each SSL object's socket is the one
// the thread read the records from just before (docs/sources.md). Every
// request is one row, the server's, decrypted, on the right connection;
// with AllClientSides the client's too.
func TestNodeHTTPS(t *testing.T) {
	node := need(t, "node")
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllClientSides=%v", all), func(t *testing.T) {
			cert, key := selfSigned(t, t.TempDir())
			srv := exec.Command(node, "testdata/node_https.js", "server", key, cert)
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
			cli := exec.Command(node, "testdata/node_https.js", "client", strconv.Itoa(port), strconv.Itoa(n))
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
				wantRow(t, r, srv.Process.Pid, 2, port, method, "/node?i="+strconv.Itoa(i), 200)
				ebpftest.Expect(t, r, map[string]any{"req_body_size": int64(size),
					"resp_body": fmt.Sprintf(`{"path":"/node?i=%d","got":%d}`, i, size)})
			}
			cl := ebpftest.WaitRows(t, store, "http_events", 0, 0, rowsOf(cli.Process.Pid, port))
			if want := map[bool]int{false: 0, true: n}[all]; len(cl) != want {
				t.Errorf("%d client rows, want %d (counters %v): %v", len(cl), want, tr.Stats().Counters, cl)
			}
			for i, r := range cl {
				wantRow(t, r, cli.Process.Pid, 1, port, sv[i]["req_method"].(string), sv[i]["req_path"].(string), 200)
			}
		})
	}
}
