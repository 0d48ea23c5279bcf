package k8s

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
	"github.com/pxq-dev/pxq/types"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// line returns the first logged line holding every one of parts, or "".
func (l *logBuffer) line(parts ...string) string {
next:
	for _, ln := range strings.Split(l.String(), "\n") {
		for _, p := range parts {
			if !strings.Contains(ln, p) {
				continue next
			}
		}
		return ln
	}
	return ""
}

// noCluster makes the environment one where kubectl finds no cluster.
func noCluster(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	os.Unsetenv("KUBECONFIG")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	os.Unsetenv("KUBERNETES_SERVICE_HOST")
}

// TestRESTConfigAsKubectl: a given kubeconfig first, then $KUBECONFIG
// (then ~/.kube/config), then the in-cluster service account; without
// any, ErrNoCluster saying what was looked for.
func TestRESTConfigAsKubectl(t *testing.T) {
	noCluster(t)
	write := func(server string) string {
		p := filepath.Join(t.TempDir(), "config")
		cfg := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: " + server + "}\n" +
			"users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, _, err := RESTConfig("")
	if !errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), "$KUBECONFIG is unset") || !strings.Contains(err.Error(), "not in a pod") {
		t.Fatalf("no configuration: %v", err)
	}
	// In a pod without kubeconfig files: the service account (which
	// this machine lacks, so its error). ~/.kube/config is not tried
	// here: client-go fixes its path when the process starts.
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	if _, _, err := RESTConfig(""); err == nil || !strings.Contains(err.Error(), "in-cluster config") {
		t.Errorf("in a pod: %v, want the in-cluster config's error", err)
	}
	// $KUBECONFIG comes before the service account, as for kubectl.
	env := write("https://env.invalid:6443")
	t.Setenv("KUBECONFIG", env)
	if cfg, from, err := RESTConfig(""); err != nil || cfg.Host != "https://env.invalid:6443" || from != "$KUBECONFIG ("+env+")" {
		t.Errorf("$KUBECONFIG: %v %q %v", cfg, from, err)
	}
	flag := write("https://flag.invalid:6443")
	if cfg, from, err := RESTConfig(flag); err != nil || cfg.Host != "https://flag.invalid:6443" || from != "kubeconfig "+flag {
		t.Errorf("--kubeconfig: %v %q %v", cfg, from, err)
	}
	if _, _, err := RESTConfig(filepath.Join(t.TempDir(), "missing")); err == nil || errors.Is(err, ErrNoCluster) {
		t.Errorf("a missing --kubeconfig gave %v, want an error", err)
	}
}

// TestOpenHostMode: with no cluster configured Open is host mode and
// says why.
func TestOpenHostMode(t *testing.T) {
	noCluster(t)
	var log logBuffer
	m, err := Open(Options{Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Mode() != metadata.ModeHost || m.Server() != "" || m.Store() != nil {
		t.Errorf("mode %s server %q", m.Mode(), m.Server())
	}
	if err := m.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "no cluster configuration") {
		t.Errorf("Wait = %v", err)
	}
	if !strings.HasPrefix(m.Describe(), "host mode: k8s: no cluster configuration") {
		t.Errorf("Describe = %q", m.Describe())
	}
	if log.line("metadata: host mode", "$KUBECONFIG is unset") == "" {
		t.Errorf("log does not say host mode and why:\n%s", log.String())
	}
	// Host mode names this process as a host entity.
	if p := m.Process(selfUPID(t)); p == nil || p.PodUID == "" || m.Pod(p.PodUID) == nil {
		t.Errorf("own process in host mode: %+v", p)
	}
}

// TestOpenAPIServerDownThenUp starts Open against an API server that is
// not running: it answers in host mode at once and logs why, then
// switches to Kubernetes mode when the server comes up, logging it, and
// names a real process in a pod's cgroup by its pod.
func TestOpenAPIServerDownThenUp(t *testing.T) {
	c := k8stest.New(t) // not started
	kubeconfig := c.Kubeconfig(t)
	var log logBuffer
	start := time.Now()
	m, err := Open(Options{Kubeconfig: kubeconfig, Store: StoreConfig{NodeName: "node-open-1"}, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open took %v with the API server down", d)
	}
	if m.Mode() != metadata.ModeHost || m.Server() != c.Host() {
		t.Fatalf("mode %s server %q, want host mode until %s answers", m.Mode(), m.Server(), c.Host())
	}
	if p := m.Process(selfUPID(t)); p == nil || m.Pod(p.PodUID) == nil {
		t.Errorf("host mode does not name this process: %+v", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	err = m.Wait(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Wait with the server down = %v, want connection refused", err)
	}
	if !strings.Contains(m.Describe(), "host mode until the Kubernetes API server "+c.Host()) {
		t.Errorf("Describe = %q", m.Describe())
	}
	if log.line("host mode until the Kubernetes API server answers", "server="+c.Host()) == "" ||
		log.line("level=WARN", "host mode: the Kubernetes API server failed; retrying", "connection refused") == "" {
		t.Fatalf("log does not show host mode and the failure:\n%s", log.String())
	}
	// One line for all eight informers failing alike.
	if n := strings.Count(log.String(), "connection refused"); n != 1 {
		t.Errorf("the failure is logged %d times:\n%s", n, log.String())
	}

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ns := "pxq-open"
	if _, err := c.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cid := k8stest.ContainerID(t)
	pod := k8stest.RunningPod(t, c.Client, ns, "api-0", "node-open-1", "10.244.9.1", cid)
	// client-go's backoff after the failures: up to 30 s.
	deadline := time.Now().Add(90 * time.Second)
	for m.Mode() != metadata.ModeKubernetes {
		if time.Now().After(deadline) {
			t.Fatalf("still %s 90 s after the server came up:\n%s", m.Mode(), log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ln := log.line("level=INFO", "metadata: Kubernetes mode", "server="+c.Host(), "node=node-open-1"); ln == "" {
		t.Errorf("log does not show the switch:\n%s", log.String())
	}
	if !strings.HasPrefix(m.Describe(), "Kubernetes: API server "+c.Host()) {
		t.Errorf("Describe = %q", m.Describe())
	}
	eventually(t, "the pod", func() bool { return m.PodByIP("10.244.9.1", 0) != nil && m.Container(cid) != nil })
	if p := m.PodByName(ns + "/api-0"); p == nil || p.UID != string(pod.UID) {
		t.Errorf("PodByName = %+v", p)
	}
	t.Logf("log:\n%s", log.String())
	if os.Geteuid() != 0 {
		t.Log("not root: no process in the pod's cgroup")
		return
	}
	v2, _ := k8stest.Cgroups(t)
	upid := k8stest.InCgroup(t, v2, k8stest.KubeletCgroup(string(pod.UID), cid))
	if p := m.Process(upid); p == nil || p.PodUID != string(pod.UID) || p.ContainerName != "app" {
		t.Errorf("process in the pod's cgroup = %+v", p)
	}
}

// selfUPID is the UPID of this test process.
func selfUPID(t *testing.T) types.UInt128Value { return k8stest.UPIDOf(t, os.Getpid()) }
