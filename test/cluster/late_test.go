package cluster_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
)

// hostModeScript is what a user can ask an agent in host mode, of the
// processes whose pids the test puts in PIDS (",1,2,"): the requests
// traced, per side; the DNS servers its clients' connections name, and
// the peers of the DNS server's.
const hostModeScript = `
import px
PIDS = '%s'
DNS_PID = %d

def ours(df):
    df.pid = px.upid_to_pid(df.upid)
    return df[px.contains(PIDS, ',' + px.itoa(df.pid) + ',')]

df = ours(px.DataFrame(table='http_events', start_time='-5m'))
px.display(df.groupby('trace_role').agg(rows=('latency', px.count)), 'http_rows')

c = ours(px.DataFrame(table='conn_stats', start_time='-5m'))
clients = c[c.trace_role == 1 and c.remote_port == 53]
clients = clients.groupby(['pid', 'remote_addr']).agg()
px.display(clients.groupby('remote_addr').agg(clients=('pid', px.count)), 'dns_servers')
server = c[c.pid == DNS_PID]
px.display(server.groupby(['remote_addr', 'trace_role']).agg(), 'dns_peers')
`

// TestAgentAPIServerLate runs pxq agent and pxq broker on the node while
// its API server cannot be reached: they serve at once in host mode, say
// so, and count each request once (both ends are on this host); when the
// API server answers they switch to Kubernetes mode, say so, and the
// suite's scripts answer the shop's traffic of both rounds, the one
// traced in host mode included.
func TestAgentAPIServerLate(t *testing.T) {
	c := k8stest.Run(t)
	n := startNode(t, c)
	bin := pxqBinary(t)
	env := clusterlessEnv(t)

	// The agent reaches the API server through a proxy that is closed
	// until the test opens it: "down", then "up".
	px := newGate(t, c.Host())
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: late
  cluster: {server: %s, insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %s}
contexts:
- name: late
  context: {cluster: late, user: admin}
current-context: late
`, px.url, k8stest.Token)), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	agent := startPXQ(t, env, `"pxq agent" addr=(\S+)`, bin, "agent", "--kubeconfig", kubeconfig,
		"--listen", "127.0.0.1:0", "--node-name", n.name)
	t.Logf("agent listening %v after start, API server unreachable", time.Since(start).Round(time.Millisecond))
	broker := startPXQ(t, env, `gRPC API" addr=(\S+)`, bin, "broker", "--agents", agent.addr, "--listen", "127.0.0.1:0", "--http", "")
	agent.waitLine(t, 20*time.Second, "level=INFO", "metadata: host mode until the Kubernetes API server answers", "server="+px.url)
	agent.waitLine(t, 20*time.Second, "level=WARN", "metadata: host mode: the Kubernetes API server failed; retrying with backoff", "connection refused")

	for _, p := range n.pods {
		p.counts(t, true)
	}
	if got := n.byName["loadgen"].send(t, fmt.Sprintf("round %d %d", views, purchases)); got != "done" {
		t.Fatalf("loadgen: %q", got)
	}
	first := n.truth(t, 1)
	requests, dnsClients := 0, 0
	for _, k := range first.edges {
		requests += k
	}
	dnsClients = len(first.dnsSent)

	// Host mode: one row per request, the server's; UDP peers are the
	// DNS server's address.
	dir := t.TempDir()
	hostScript := filepath.Join(dir, "host_mode.pxl")
	pids := ","
	for _, p := range n.pods {
		pids += fmt.Sprintf("%d,", p.cmd.Process.Pid)
	}
	dnsPod := n.byName["coredns"]
	if err := os.WriteFile(hostScript, []byte(fmt.Sprintf(hostModeScript, pids, dnsPod.cmd.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	peers := map[string]string{}
	for p := range first.dnsServed {
		peers[p.ip+" 2"] = ""
	}
	var diffs []string
	waitFor(30*time.Second, func() bool {
		out := runJSON(t, env, bin, "run", "--broker", broker.addr, hostScript)
		diffs = compare("http_rows", map[string]string{"2": fmt.Sprintf("rows=%d", requests)}, out["http_rows"], "trace_role", "rows")
		diffs = append(diffs, compare("dns_servers", map[string]string{n.dnsIP: fmt.Sprintf("clients=%d", dnsClients)},
			out["dns_servers"], "remote_addr", "clients")...)
		diffs = append(diffs, compare("dns_peers", peers, keyed(out["dns_peers"], func(r row) string {
			return fmt.Sprintf("%s %d", r.str("remote_addr"), r.num("trace_role"))
		}), "")...)
		return len(diffs) == 0
	})
	for _, d := range diffs {
		t.Errorf("host mode: %s", d)
	}
	t.Logf("host mode answers right %v after start", time.Since(start).Round(time.Millisecond))
	if agent.line("metadata: Kubernetes mode") != "" {
		t.Fatalf("the agent is in Kubernetes mode with the API server unreachable:\n%s", agent)
	}

	// Up: the agent switches and says so; the second round adds to the
	// first, and the scripts see both with the cluster's names.
	px.open()
	up := time.Now()
	agent.waitLine(t, 90*time.Second, "level=INFO", "metadata: Kubernetes mode", "server="+px.url, "node="+n.name)
	t.Logf("Kubernetes mode %v after the API server became reachable", time.Since(up).Round(time.Millisecond))
	if got := n.byName["loadgen"].send(t, fmt.Sprintf("round %d %d", views, purchases)); got != "done" {
		t.Fatalf("loadgen: %q", got)
	}
	both := n.truth(t, 2) // counts since the reset before the first round
	checkLive(t, n, both, func(name string, args ...string) map[string][]row {
		return runJSON(t, env, bin, append([]string{"run", "--broker", broker.addr, script(t, name)}, args...)...)
	})
	t.Logf("Kubernetes mode answers right %v after start; agent log:\n%s", time.Since(start).Round(time.Millisecond), agent)
}

// gate is a TCP proxy to an address that refuses connections until it is
// opened.
type gate struct {
	url    string // the target's URL with the gate's address
	port   string
	target string
	once   sync.Once
	t      *testing.T
}

func newGate(t *testing.T, targetURL string) *gate {
	u, err := url.Parse(targetURL)
	if err != nil {
		t.Fatal(err)
	}
	// A free port, closed until open.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g := &gate{target: u.Host, t: t}
	_, g.port, _ = net.SplitHostPort(addr)
	u.Host = addr
	g.url = strings.TrimSuffix(u.String(), "/")
	return g
}

// open starts forwarding, until the test ends.
func (g *gate) open() {
	g.once.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:"+g.port)
		if err != nil {
			g.t.Fatalf("open the gate: %v", err)
		}
		g.t.Cleanup(func() { l.Close() })
		go func() {
			for {
				in, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer in.Close()
					out, err := net.Dial("tcp", g.target)
					if err != nil {
						return
					}
					defer out.Close()
					go io.Copy(out, in)
					io.Copy(in, out)
				}()
			}
		}()
	})
}
