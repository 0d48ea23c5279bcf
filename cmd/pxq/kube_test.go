package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
)

// stderrLog collects a child's stderr lines as they come.
type stderrLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *stderrLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// line returns the first line holding every one of parts, or "".
func (l *stderrLog) line(parts ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, ln := range l.lines {
		for _, p := range parts {
			if !strings.Contains(ln, p) {
				continue next
			}
		}
		return ln
	}
	return ""
}

// startLogged starts cmd, keeps its stderr lines, and returns the first
// submatch of pattern on them (an address), waiting at most 60 s. The
// process is killed when the test ends.
func startLogged(t *testing.T, cmd *exec.Cmd, pattern string) (string, *stderrLog) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	log := &stderrLog{}
	re := regexp.MustCompile(pattern)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.mu.Lock()
			log.lines = append(log.lines, sc.Text())
			log.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatalf("pxq %s exited without announcing an address:\n%s", cmd.Args[1], log)
		}
		return addr, log
	case <-time.After(60 * time.Second):
		t.Fatalf("pxq %s: no address after 60 s:\n%s", cmd.Args[1], log)
	}
	return "", nil
}

// clusterlessEnv is this environment without a cluster configuration,
// plus extra: a command sees a cluster only when the test gives one.
func clusterlessEnv(t *testing.T, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "KUBERNETES_SERVICE_HOST=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "HOME="+t.TempDir()), extra...)
}

// jsonObjects parses pxq's -o json output: one object per row.
func jsonObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	for _, ln := range strings.Split(strings.TrimSpace(out), "\n") {
		if ln == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			t.Fatalf("output line %q: %v", ln, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// TestKubernetesMetadataCommands runs pxq's commands on a "node" of a
// real API server: a pod whose container is a real process in the cgroup
// kubelet would give it. pxq serve --kubeconfig, pxq run --collect with
// $KUBECONFIG, a capture taken with --kubeconfig and replayed without the
// cluster, and a broker without metadata over an agent with it (the
// names computed after an aggregate) all name the process by its pod,
// and say at start which metadata they use.
func TestKubernetesMetadataCommands(t *testing.T) {
	v2, _ := k8stest.Cgroups(t)
	c := k8stest.Run(t)
	kubeconfig := c.Kubeconfig(t)
	ctx := context.Background()
	const ns = "pxq-cli"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cid := k8stest.ContainerID(t)
	pod := k8stest.RunningPod(t, c.Client, ns, "shop-0", "node-cli-1", "10.244.7.7", cid)
	pid := k8stest.InCgroup(t, v2, k8stest.KubeletCgroup(string(pod.UID), cid)).PID()
	wantPod := ns + "/shop-0"

	dir := t.TempDir()
	script := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(fmt.Sprintf(src, pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Names per row, on the node.
	perRow := script("per_row.pxl", `
import px
df = px.DataFrame(table='process_stats', start_time='-5m')
df.pid = px.upid_to_pid(df.upid)
df = df[df.pid == %d]
df.pod = df.ctx['pod']
df.container = df.ctx['container']
px.display(df[['pid', 'pod', 'container']].head(1), 'proc')
`)
	// Names after an aggregate: on a broker, in its merge fragment.
	afterAgg := script("after_agg.pxl", `
import px
df = px.DataFrame(table='process_stats', start_time='-5m')
df = df.groupby('upid').agg(n=('rss_bytes', px.count))
df.pid = px.upid_to_pid(df.upid)
df = df[df.pid == %d]
df.pod = df.ctx['pod']
df.service_or_none = df.ctx['namespace']
px.display(df[['pid', 'pod', 'service_or_none']], 'proc')
`)
	// query runs a script on a server until its row names the pod.
	query := func(t *testing.T, addr, script string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, errOut, err := runPXQ(t, "run", "--broker", addr, script, "-o", "json")
			if err == nil {
				if rows := jsonObjects(t, out); len(rows) == 1 && rows[0]["pod"] == wantPod {
					return rows[0]
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no row naming %s after 60 s: %v\n%s\n%s", wantPod, err, out, errOut)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	t.Run("serve --kubeconfig", func(t *testing.T) {
		cmd := exec.Command(pxqBinary(t), "serve", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0", "--http", "")
		cmd.Env = clusterlessEnv(t)
		addr, log := startLogged(t, cmd, `gRPC API" addr=(\S+)`)
		row := query(t, addr, perRow)
		if row["container"] != "app" {
			t.Errorf("container = %v, want app", row["container"])
		}
		if log.line("metadata: Kubernetes mode", "server="+c.Host(), "kubeconfig "+kubeconfig) == "" {
			t.Errorf("serve does not say it uses the cluster:\n%s", log)
		}
	})

	t.Run("run --collect with $KUBECONFIG", func(t *testing.T) {
		cmd := exec.Command(pxqBinary(t), "run", perRow, "--collect", "1s", "-o", "json")
		cmd.Env = clusterlessEnv(t, "KUBECONFIG="+kubeconfig)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("pxq run: %v\n%s", err, stderr.String())
		}
		rows := jsonObjects(t, stdout.String())
		if len(rows) != 1 || rows[0]["pod"] != wantPod || rows[0]["container"] != "app" {
			t.Errorf("rows %v, want the process in pod %s, container app", rows, wantPod)
		}
		if want := "pxq: metadata: Kubernetes mode server=" + c.Host() + ` from="$KUBECONFIG (` + kubeconfig + `)"`; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %s:\n%s", want, stderr.String())
		}
	})

	t.Run("capture --kubeconfig, replayed without the cluster", func(t *testing.T) {
		capDir := filepath.Join(t.TempDir(), "capture")
		cmd := exec.Command(pxqBinary(t), "capture", capDir, "--duration", "1s", "--kubeconfig", kubeconfig)
		cmd.Env = clusterlessEnv(t)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "kubernetes metadata") {
			t.Fatalf("pxq capture: %v\n%s", err, out)
		}
		replay := exec.Command(pxqBinary(t), "run", perRow, "--capture", capDir, "-o", "json")
		replay.Env = clusterlessEnv(t)
		out, err := replay.Output()
		if err != nil {
			t.Fatalf("pxq run --capture: %v", err)
		}
		if rows := jsonObjects(t, string(out)); len(rows) != 1 || rows[0]["pod"] != wantPod || rows[0]["container"] != "app" {
			t.Errorf("replayed rows %v, want the process in pod %s, container app", rows, wantPod)
		}
	})

	t.Run("broker without metadata, agent with", func(t *testing.T) {
		agent := exec.Command(pxqBinary(t), "agent", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0", "--node-name", "node-cli-1")
		agent.Env = clusterlessEnv(t)
		agentAddr, agentLog := startLogged(t, agent, `"pxq agent" addr=(\S+)`)
		broker := exec.Command(pxqBinary(t), "broker", "--agents", agentAddr, "--listen", "127.0.0.1:0", "--http", "")
		broker.Env = clusterlessEnv(t)
		addr, brokerLog := startLogged(t, broker, `gRPC API" addr=(\S+)`)
		row := query(t, addr, afterAgg)
		if row["service_or_none"] != ns {
			t.Errorf("namespace = %v, want %s", row["service_or_none"], ns)
		}
		if brokerLog.line("metadata: host mode", "no cluster configuration") == "" ||
			brokerLog.line("no Kubernetes metadata of its own", "ask the agents") == "" {
			t.Errorf("the broker does not say where its metadata comes from:\n%s", brokerLog)
		}
		if agentLog.line("metadata: Kubernetes mode", "node=node-cli-1") == "" {
			t.Errorf("the agent does not say it uses the cluster:\n%s", agentLog)
		}
	})
}

// TestAgentAPIServerDownThenUp starts pxq agent against an API server
// that is not running: it listens at once in host mode, says why, and
// switches to Kubernetes mode when the server comes up, saying so; its
// Info reports the mode throughout.
func TestAgentAPIServerDownThenUp(t *testing.T) {
	c := k8stest.New(t) // not started
	kubeconfig := c.Kubeconfig(t)
	bin := pxqBinary(t)
	start := time.Now()
	cmd := exec.Command(bin, "agent", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0", "--node-name", "node-down-1")
	cmd.Env = clusterlessEnv(t)
	addr, log := startLogged(t, cmd, `"pxq agent" addr=(\S+)`)
	took := time.Since(start)
	t.Logf("listening %v after start, API server down", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the agent took %v to listen with the API server down", took)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	agent := agentpb.NewAgentServiceClient(conn)
	info := func() *agentpb.InfoResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := agent.Info(ctx, &agentpb.InfoRequest{})
		if err != nil {
			t.Fatalf("Info: %v", err)
		}
		return r
	}
	if r := info(); r.GetMetadataMode() != "host" || !strings.HasPrefix(r.GetMetadata(), "host mode until the Kubernetes API server "+c.Host()) {
		t.Errorf("Info with the server down: mode %q, %q", r.GetMetadataMode(), r.GetMetadata())
	}
	waitLine := func(parts ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for log.line(parts...) == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no log line with %q:\n%s", parts, log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLine("level=INFO", "metadata: host mode until the Kubernetes API server answers", "server="+c.Host())
	waitLine("level=WARN", "metadata: host mode: the Kubernetes API server failed; retrying with backoff", "connection refused")
	if r := info(); !strings.Contains(r.GetMetadata(), "connection refused") {
		t.Errorf("Info does not say why host mode: %q", r.GetMetadata())
	}

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	for info().GetMetadataMode() != "kubernetes" {
		if time.Since(up) > 90*time.Second {
			t.Fatalf("still host mode 90 s after the API server came up:\n%s", log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("Kubernetes mode %v after the API server was ready", time.Since(up).Round(time.Millisecond))
	waitLine("level=INFO", "metadata: Kubernetes mode", "server="+c.Host(), "node=node-down-1")
	if r := info(); !strings.HasPrefix(r.GetMetadata(), "Kubernetes: API server "+c.Host()) {
		t.Errorf("Info in Kubernetes mode: %q", r.GetMetadata())
	}
	t.Logf("agent log:\n%s", log)
}
