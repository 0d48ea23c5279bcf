package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
)

// The load of one round: catalog views and purchases through the
// frontend.
const (
	views     = 100
	purchases = 50
)

// scriptNames are the suite's scripts, folders of testdata in the
// layout of Pixie's library (a .pxl and its vis.json).
var scriptNames = []string{"service_stats", "service_edges", "namespace_overview", "pod_overview",
	"net_flow_graph", "inbound_conns", "outbound_conns", "dns_flow", "pxviews_http"}

// TestShop runs the shop on a one-node cluster and one round of load,
// traced at once by pxq agent + pxq broker, pxq serve, pxq run --collect
// and pxq capture, all finding the cluster by --kubeconfig or
// $KUBECONFIG; each script's answers must equal what the shop's
// programs counted, live, and over the capture replayed after the
// cluster is gone.
func TestShop(t *testing.T) {
	begin := time.Now()
	c := k8stest.Run(t)
	n := startNode(t, c)
	t.Logf("cluster and node up in %v", time.Since(begin).Round(time.Millisecond))
	kubeconfig := c.Kubeconfig(t)
	bin := pxqBinary(t)
	env := clusterlessEnv(t)

	agent := startPXQ(t, env, `"pxq agent" addr=(\S+)`, bin, "agent", "--kubeconfig", kubeconfig,
		"--listen", "127.0.0.1:0", "--node-name", n.name)
	broker := startPXQ(t, env, `gRPC API" addr=(\S+)`, bin, "broker", "--kubeconfig", kubeconfig,
		"--agents", agent.addr, "--listen", "127.0.0.1:0", "--http", "")
	serve := startPXQ(t, env, `gRPC API" addr=(\S+)`, bin, "serve", "--kubeconfig", kubeconfig,
		"--listen", "127.0.0.1:0", "--http", "")
	for _, p := range []*pxqProc{agent, broker, serve} {
		p.waitLine(t, 60*time.Second, "metadata: Kubernetes mode", "server="+c.Host())
	}

	t.Logf("agent, broker and serve in Kubernetes mode at %v", time.Since(begin).Round(time.Millisecond))

	// pxq run --collect with $KUBECONFIG runs every script at once: the
	// suite's scripts merged into one.
	all := mergeScripts(t)
	collectDir := t.TempDir()
	runCollect := exec.Command(bin, "run", all, "--collect", "12s", "-o", "json", "--arg", "pod="+n.byName["checkout"].Name())
	runCollect.Env = append(slices.Clip(env), "KUBECONFIG="+kubeconfig)
	runCollect.Dir = collectDir
	collectOut, collectDone := startBackground(t, runCollect)
	capDir := filepath.Join(t.TempDir(), "capture")
	capture := exec.Command(bin, "capture", capDir, "--duration", "12s", "--kubeconfig", kubeconfig)
	capture.Env = env
	captureOut, captureDone := startBackground(t, capture)
	collectOut.waitLine(t, 30*time.Second, "tracing this host for")
	captureOut.waitLine(t, 30*time.Second, "recording this host for")

	// One round, and what the programs counted.
	for _, p := range n.pods {
		p.counts(t, true)
	}
	start := time.Now()
	if got := n.byName["loadgen"].send(t, fmt.Sprintf("round %d %d", views, purchases)); got != "done" {
		t.Fatalf("loadgen: %q", got)
	}
	t.Logf("round of %d views and %d purchases in %v", views, purchases, time.Since(start).Round(time.Millisecond))
	truth := n.truth(t, 1)

	t.Run("agent and broker", func(t *testing.T) {
		checkLive(t, n, truth, func(name string, args ...string) map[string][]row {
			return runJSON(t, env, bin, append([]string{"run", "--broker", broker.addr, script(t, name)}, args...)...)
		})
	})
	t.Run("serve --kubeconfig", func(t *testing.T) {
		checkLive(t, n, truth, func(name string, args ...string) map[string][]row {
			return runJSON(t, env, bin, append([]string{"run", "--broker", serve.addr, script(t, name)}, args...)...)
		})
	})
	t.Run("run --collect with $KUBECONFIG", func(t *testing.T) {
		if err := <-collectDone; err != nil {
			t.Fatalf("pxq run --collect: %v\n%s", err, collectOut)
		}
		if collectOut.line("metadata: Kubernetes mode", "server="+c.Host(), "$KUBECONFIG") == "" {
			t.Errorf("pxq run --collect does not say it uses the cluster:\n%s", collectOut)
		}
		tables := parseJSON(t, collectOut.stdout.String())
		for _, d := range diffAll(n, truth, func(string, ...string) map[string][]row { return tables }) {
			t.Error(d)
		}
	})
	t.Run("capture replayed without the cluster", func(t *testing.T) {
		if err := <-captureDone; err != nil {
			t.Fatalf("pxq capture: %v\n%s", err, captureOut)
		}
		if captureOut.line("metadata: Kubernetes mode", "server="+c.Host()) == "" || captureOut.line("kubernetes metadata") == "" {
			t.Errorf("pxq capture does not say it keeps the cluster's metadata:\n%s", captureOut)
		}
		c.Stop()
		for _, d := range diffAll(n, truth, func(name string, args ...string) map[string][]row {
			return runJSON(t, env, bin, append([]string{"run", script(t, name), "--capture", capDir}, args...)...)
		}) {
			t.Error(d)
		}
	})
}

// checkLive runs the scripts through run until their answers equal the
// truth (the sources flush every 100 ms, conn_stats every 5 s), and fails
// with the differences left after 30 s.
func checkLive(t *testing.T, n *node, truth *truth, run runner) {
	t.Helper()
	var diffs []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if diffs = diffAll(n, truth, run); len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

// row is one row of pxq's JSON output.
type row map[string]any

func (r row) str(col string) string { return fmt.Sprint(r[col]) }

func (r row) num(col string) int64 {
	f, _ := r[col].(float64)
	return int64(f)
}

// runJSON runs pxq with args and -o json and returns its tables.
func runJSON(t *testing.T, env []string, bin string, args ...string) map[string][]row {
	t.Helper()
	cmd := exec.Command(bin, append(args, "-o", "json")...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pxq %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	tables := parseJSON(t, stdout.String())
	if os.Getenv("PXQ_SUITE_DUMP") != "" {
		t.Logf("pxq %s:\n%s", strings.Join(args, " "), stdout.String())
	}
	return tables
}

// parseJSON splits pxq's JSON rows by their "_table".
func parseJSON(t *testing.T, out string) map[string][]row {
	t.Helper()
	tables := map[string][]row{}
	for _, ln := range strings.Split(out, "\n") {
		if strings.TrimSpace(ln) == "" {
			continue
		}
		var r row
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			t.Fatalf("output line %q: %v", ln, err)
		}
		name := r.str("_table")
		tables[name] = append(tables[name], r)
	}
	return tables
}

// script is the path of the suite's script name.
func script(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mergeScripts writes the suite's scripts as one (their functions in one
// .pxl, their variables and widgets in one vis.json) and returns its
// folder.
func mergeScripts(t *testing.T) string {
	t.Helper()
	type visSpec struct {
		Variables []map[string]any `json:"variables"`
		Widgets   []map[string]any `json:"widgets"`
	}
	var pxl bytes.Buffer
	var all visSpec
	seen := map[string]bool{}
	for _, name := range scriptNames {
		src, err := os.ReadFile(filepath.Join(script(t, name), name+".pxl"))
		if err != nil {
			t.Fatal(err)
		}
		pxl.Write(src)
		pxl.WriteString("\n")
		b, err := os.ReadFile(filepath.Join(script(t, name), "vis.json"))
		if err != nil {
			t.Fatal(err)
		}
		var v visSpec
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s/vis.json: %v", name, err)
		}
		for _, x := range v.Variables {
			if n := fmt.Sprint(x["name"]); !seen[n] {
				seen[n] = true
				all.Variables = append(all.Variables, x)
			}
		}
		all.Widgets = append(all.Widgets, v.Widgets...)
	}
	dir := filepath.Join(t.TempDir(), "shop_suite")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	vis, _ := json.MarshalIndent(all, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "shop_suite.pxl"), pxl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vis.json"), vis, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	buildOnce sync.Once
	builtPXQ  string
	buildErr  error
)

// pxqBinary builds cmd/pxq once per test binary.
func pxqBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pxq-cluster-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPXQ = filepath.Join(dir, "pxq")
		out, err := exec.Command("go", "build", "-o", builtPXQ, "github.com/pxq-dev/pxq/cmd/pxq").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPXQ
}

// clusterlessEnv is this environment without a cluster configuration: a
// command sees the cluster only when the test gives it.
func clusterlessEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "KUBERNETES_SERVICE_HOST=") &&
			!strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, roleEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+t.TempDir())
}

// pxqProc is a pxq process of the test: its stderr lines as they come
// and the address it announced.
type pxqProc struct {
	addr   string
	mu     sync.Mutex
	lines  []string
	stdout bytes.Buffer
}

func (p *pxqProc) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// line returns the first stderr line holding every one of parts, or "".
func (p *pxqProc) line(parts ...string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
next:
	for _, ln := range p.lines {
		for _, s := range parts {
			if !strings.Contains(ln, s) {
				continue next
			}
		}
		return ln
	}
	return ""
}

func (p *pxqProc) waitLine(t *testing.T, d time.Duration, parts ...string) {
	t.Helper()
	if !waitFor(d, func() bool { return p.line(parts...) != "" }) {
		t.Fatalf("no line with %q after %v:\n%s", parts, d, p)
	}
}

// startPXQ starts bin with args, killed when the test ends, and waits
// for the address its stderr announces (the first submatch of pattern).
func startPXQ(t *testing.T, env []string, pattern, bin string, args ...string) *pxqProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	p := &pxqProc{}
	re := regexp.MustCompile(pattern)
	found := make(chan string, 1)
	p.follow(t, cmd, func(ln string) {
		if m := re.FindStringSubmatch(ln); m != nil {
			select {
			case found <- m[1]:
			default:
			}
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	select {
	case p.addr = <-found:
	case <-time.After(60 * time.Second):
		t.Fatalf("pxq %s: no address after 60 s:\n%s", args[0], p)
	}
	return p
}

// startBackground starts cmd, whose stderr lines are followed, and
// returns the channel of its end.
func startBackground(t *testing.T, cmd *exec.Cmd) (*pxqProc, <-chan error) {
	t.Helper()
	p := &pxqProc{}
	cmd.Stdout = &p.stdout
	p.follow(t, cmd, nil)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return p, done
}

// follow keeps the lines of cmd's stderr, calling each (if set) on each.
func (p *pxqProc) follow(t *testing.T, cmd *exec.Cmd, each func(string)) {
	cmd.Stderr = &lineWriter{p: p, each: each}
}

// lineWriter is a child's stderr: it cuts what the child writes into lines.
type lineWriter struct {
	p    *pxqProc
	each func(string)
	buf  []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		ln := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.p.mu.Lock()
		w.p.lines = append(w.p.lines, ln)
		w.p.mu.Unlock()
		if w.each != nil {
			w.each(ln)
		}
	}
}

// sortedKeys lists m's keys in order, for messages.
func sortedKeys[V any](m map[string]V) []string {
	ks := slices.Collect(maps.Keys(m))
	sort.Strings(ks)
	return ks
}
