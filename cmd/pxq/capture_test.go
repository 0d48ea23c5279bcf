package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/demo"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/table"
)

// cmdlineScript names every sampled process by ctx['cmdline'].
const cmdlineScript = `import px
df = px.DataFrame(table='process_stats', start_time='-10m')
df.cmdline = df.ctx['cmdline']
df = df.groupby(['upid', 'cmdline']).agg(samples=('rss_bytes', px.count))
px.display(df, 'procs')
`

// jsonRows returns the rows of `pxq run -o json` output, sorted.
func jsonRows(t *testing.T, out string) []string {
	t.Helper()
	var rows []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON row: %q: %v", l, err)
		}
		rows = append(rows, l)
	}
	sort.Strings(rows)
	return rows
}

// TestSaveCaptureReplays traces this host with `pxq run --collect
// --save-capture`, then replays the capture with `pxq run --capture`: a
// ctx['cmdline'] script answers the same as the live run did.
func TestSaveCaptureReplays(t *testing.T) {
	tmp := t.TempDir()
	script := filepath.Join(tmp, "cmdline.pxl")
	if err := os.WriteFile(script, []byte(cmdlineScript), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "cap")
	liveOut, stderr, err := runPXQ(t, "run", script, "--collect", "1500ms", "--save-capture", dir, "-o", "json")
	if err != nil {
		t.Fatalf("pxq run --collect --save-capture: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "capture written to "+dir) {
		t.Errorf("stderr does not say where the capture went:\n%s", stderr)
	}
	replayOut, stderr, err := runPXQ(t, "run", script, "--capture", dir, "-o", "json")
	if err != nil {
		t.Fatalf("pxq run --capture: %v\n%s", err, stderr)
	}
	if strings.Contains(stderr, "note:") {
		t.Errorf("a current capture got a note:\n%s", stderr)
	}
	live, replay := jsonRows(t, liveOut), jsonRows(t, replayOut)
	named := 0
	for _, r := range live {
		if !strings.Contains(r, `"cmdline":""`) {
			named++
		}
	}
	if named == 0 {
		t.Fatalf("the live run named no process:\n%s", liveOut)
	}
	if !slices.Equal(live, replay) {
		t.Errorf("replay differs from the live run\nlive:\n%s\nreplay:\n%s", strings.Join(live, "\n"), strings.Join(replay, "\n"))
	}

	c, err := capture.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if m := c.Manifest; m.Format != capture.FormatVersion || m.Metadata != "host" || !slices.Contains(m.Hosts, host) || m.EndNS <= m.StartNS {
		t.Errorf("manifest %+v", m)
	}
	if len(c.Snapshot().Processes) < named {
		t.Errorf("%d processes saved, %d named live", len(c.Snapshot().Processes), named)
	}
}

// TestOldArrowCaptureLoads replays a capture in the format older `pxq run
// --save-capture` wrote (one .arrow file per table, nothing else): it
// loads, with a note saying what it lacks.
func TestOldArrowCaptureLoads(t *testing.T) {
	c, err := capture.OpenFS(demo.Shipped(), "shipped")
	if err != nil {
		t.Fatal(err)
	}
	store := table.NewStore(0)
	if err := c.Load(store); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tb := range store.Tables() {
		var recs []arrow.Record
		for _, b := range tb.Snapshot(0, 0) {
			recs = append(recs, b.Record)
		}
		if err := table.WriteFile(filepath.Join(dir, tb.Name()+".arrow"), tb.Relation(), recs); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr, err := runPXQ(t, "run", "px/http_data", "--capture", dir)
	if err != nil {
		t.Fatalf("pxq run --capture (.arrow): %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "note: capture "+dir+" was written by an older pxq (.arrow tables") {
		t.Errorf("no note on stderr:\n%s", stderr)
	}
	if tableRows(stdout)["http_data"] == 0 {
		t.Errorf("no rows from the .arrow capture:\n%s", stdout)
	}
}

// TestCaptureStoppedBySIGTERM records this host with `pxq capture` while
// the test serves and sends HTTP requests on 127.0.0.1, stops it with
// SIGTERM (as a container stop does) long before --duration: the capture
// is complete, every request is one row of http_events, and `pxq run
// --capture` counts them.
func TestCaptureStoppedBySIGTERM(t *testing.T) {
	testenv.RequireRoot(t, "trace HTTP with eBPF")
	dir := filepath.Join(t.TempDir(), "cap")
	var stderr lockedBuffer
	cmd := exec.Command(pxqBinary(t), "capture", dir, "--duration", "10m", "--spill-every", "500ms")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "recording this host") {
		if time.Now().After(deadline) {
			t.Fatalf("pxq capture did not start recording:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(stderr.String(), "eBPF tracing is off") {
		testenv.SkipOrFailf(t, "eBPF tracing is off:\n%s", stderr.String())
	}
	const path = "/sigterm-capture-test"
	srv := httptest.NewServer(nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	const requests = 300
	client := &nethttp.Client{Transport: &nethttp.Transport{}}
	for i := 0; i < requests; i++ {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if i == requests/2 {
			time.Sleep(time.Second) // a spill in between
		}
	}
	time.Sleep(time.Second) // for the tracer to see the last responses
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pxq capture after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "capture written to "+dir) || strings.Contains(stderr.String(), "dropped") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	script := filepath.Join(t.TempDir(), "count.pxl")
	src := `import px
df = px.DataFrame(table='http_events', start_time='-1h')
df = df[df.req_path == '` + path + `']
px.display(df.agg(n=('latency', px.count)), 'n')
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runPXQ(t, "run", script, "--capture", dir, "-o", "json")
	if err != nil {
		t.Fatalf("pxq run --capture: %v\n%s", err, errOut)
	}
	if want := fmt.Sprintf(`{"_table":"n","n":%d}`, requests); strings.TrimSpace(out) != want {
		t.Errorf("requests in the capture: %s, want %s", strings.TrimSpace(out), want)
	}
}

// lockedBuffer is a bytes.Buffer a process writes to while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
