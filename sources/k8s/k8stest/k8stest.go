// Package k8stest runs a real etcd and kube-apiserver for tests (the
// binaries test/k8s/build.sh builds, found by testenv.KubeBinaries), and
// makes what kubelet and a container runtime would on a node: pods with
// a running status, and real processes in cgroups named as kubelet names
// a pod's containers'.
package k8stest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/types"
)

// Token is the admin bearer token of every test API server.
const Token = "pxq-test-token"

// Cluster is an etcd and kube-apiserver pair on 127.0.0.1. Its address
// is fixed when it is prepared, so that a client can be configured (and
// fail to connect) before it starts.
type Cluster struct {
	// Config reaches the API server as an admin; Client uses it.
	Config *rest.Config
	Client kubernetes.Interface

	bins    string
	dir     string
	ports   [3]int // etcd client, etcd peer, API server
	etcd    *exec.Cmd
	apisrv  *exec.Cmd
	stopped chan struct{}
}

// Run starts a cluster for the test and stops it when the test ends. It
// stops the test (testenv.SkipOrFail) when the binaries are missing.
func Run(t testing.TB) *Cluster {
	t.Helper()
	c := New(t)
	if err := c.Start(); err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	return c
}

// New prepares a cluster for the test without starting it; it is
// stopped when the test ends.
func New(t testing.TB) *Cluster {
	t.Helper()
	c, err := Prepare(testenv.KubeBinaries(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Prepare makes the folder, keys and addresses of a cluster whose
// binaries are in bins. Start runs it; Stop removes the folder.
func Prepare(bins string) (_ *Cluster, err error) {
	dir, err := os.MkdirTemp("", "pxq-k8s-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bins: bins, dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for i := range c.ports {
		if c.ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	// Service account keys and a static admin token.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(Token + `,admin,1,"system:masters"` + "\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	c.Config = &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", c.ports[2]),
		BearerToken:     Token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		WarningHandler:  rest.NoWarnings{}, // "v1 Endpoints is deprecated"
		QPS:             200,
		Burst:           400,
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, err
	}
	return c, nil
}

// Host is the API server's URL.
func (c *Cluster) Host() string { return c.Config.Host }

// Start runs etcd and the API server and waits until it is ready.
func (c *Cluster) Start() (err error) {
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.ports[1])
	c.etcd = command(filepath.Join(c.bins, "etcd"), filepath.Join(c.dir, "etcd.log"),
		"--name=pxq", "--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=pxq="+peerURL, "--unsafe-no-fsync")
	if err := c.etcd.Start(); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	c.apisrv = command(filepath.Join(c.bins, "kube-apiserver"), filepath.Join(c.dir, "apiserver.log"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.ports[2]),
		"--cert-dir="+filepath.Join(c.dir, "certs"),
		"--service-account-key-file="+filepath.Join(c.dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(c.dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--token-auth-file="+filepath.Join(c.dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--disable-admission-plugins=ServiceAccount")
	if err := c.apisrv.Start(); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	c.stopped = make(chan struct{})
	go func(cmd *exec.Cmd, stopped chan struct{}) { cmd.Wait(); close(stopped) }(c.apisrv, c.stopped)
	if err := c.waitReady(60 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "apiserver.log"))
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return fmt.Errorf("%w\napiserver log tail:\n%s", err, log)
	}
	return nil
}

// WriteKubeconfig writes a kubeconfig at path, as kubectl reads it, for
// the user of a bearer token (Token for the admin).
func (c *Cluster) WriteKubeconfig(path, token string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: pxq-test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: pxq-test
  context: {cluster: pxq-test, user: admin}
current-context: pxq-test
`, c.Config.Host, token)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// Kubeconfig writes the admin's kubeconfig in a temporary folder of the
// test and returns its path.
func (c *Cluster) Kubeconfig(t testing.TB) string {
	t.Helper()
	return c.KubeconfigFor(t, Token)
}

// KubeconfigFor is Kubeconfig for the user of token (a service
// account's, say).
func (c *Cluster) KubeconfigFor(t testing.TB, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := c.WriteKubeconfig(p, token); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// command prepares a child that dies with the test binary.
func command(path, logFile string, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	if f, err := os.Create(logFile); err == nil {
		cmd.Stdout, cmd.Stderr = f, f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

func (c *Cluster) waitReady(timeout time.Duration) error {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.stopped:
			return fmt.Errorf("kube-apiserver exited: %v", c.apisrv.ProcessState)
		default:
		}
		req, _ := http.NewRequest("GET", c.Config.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.Config.BearerToken)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after %v", timeout)
}

// Stop ends the API server before etcd, gracefully then not, and
// removes the cluster's folder.
func (c *Cluster) Stop() {
	c.kill()
	os.RemoveAll(c.dir)
}

func (c *Cluster) kill() {
	for _, cmd := range []*exec.Cmd{c.apisrv, c.etcd} {
		if cmd == nil || cmd.Process == nil {
			continue
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			if cmd == c.apisrv && c.stopped != nil {
				<-c.stopped
			} else {
				cmd.Wait()
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	c.apisrv, c.etcd = nil, nil
}

// ContainerID returns a new random container id (64 hex digits).
func ContainerID(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// MarkRunning gives a created pod the status kubelet would: Running and
// ready, with ip and one running container per spec container, the first
// of id cid (the others get ids of their own).
func MarkRunning(ctx context.Context, client kubernetes.Interface, p *corev1.Pod, ip, cid string) (*corev1.Pod, error) {
	now := metav1.Now()
	p = p.DeepCopy()
	p.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "192.168.50.10",
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		StartTime: &now,
		QOSClass:  p.Status.QOSClass,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
	}
	for i, c := range p.Spec.Containers {
		id := cid
		if i > 0 {
			id = fmt.Sprintf("%s%02x", cid[:62], i)
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name:        c.Name,
			ContainerID: "containerd://" + id,
			Image:       c.Image,
			ImageID:     c.Image + "@sha256:" + id,
			Ready:       true,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
}

// RunningPod creates the pod ns/name with one container "app" on node
// and marks it running with ip and container id cid.
func RunningPod(t testing.TB, client kubernetes.Interface, ns, name, node, ip, cid string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	if p, err = MarkRunning(ctx, client, p, ip, cid); err != nil {
		t.Fatalf("update status of pod %s/%s: %v", ns, name, err)
	}
	return p
}

// Cgroups stops the test (testenv.SkipOrFail) unless it can make
// cgroups: as root, with cgroup v2 mounted. It returns the v2 mount
// and the v1 memory controller's ("" when absent).
func Cgroups(t testing.TB) (v2, v1memory string) {
	t.Helper()
	testenv.RequireRoot(t, "create cgroups")
	v2, v1memory = cgroupMounts(t)
	if v2 == "" {
		testenv.SkipOrFail(t, "no cgroup v2 mount")
	}
	return v2, v1memory
}

// cgroupMounts finds where cgroup v2 and the v1 memory controller are
// mounted, from /proc/self/mountinfo ("" when absent).
func cgroupMounts(t testing.TB) (v2, v1memory string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "… mountpoint … - fstype source superoptions"
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+3 >= len(fields) {
			continue
		}
		mnt, fstype, opts := fields[4], fields[sep+1], fields[sep+3]
		switch {
		case fstype == "cgroup2" && v2 == "":
			v2 = mnt
		case fstype == "cgroup" && v1memory == "" && slices.Contains(strings.Split(opts, ","), "memory"):
			v1memory = mnt
		}
	}
	return v2, v1memory
}

// KubeletCgroup is the cgroup (below the v2 mount) that kubelet's
// systemd driver and containerd give container cid of the pod of UID
// podUID, under a test slice.
func KubeletCgroup(podUID, cid string) string {
	return fmt.Sprintf("pxqtest-kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-%s.scope",
		strings.ReplaceAll(podUID, "-", "_"), cid)
}

// InCgroup starts `sleep 300` and moves it into a new cgroup at
// mount/rel; cleanup kills it and removes the folders. It returns the
// process's UPID (ASID 0).
func InCgroup(t testing.TB, mount, rel string) types.UInt128Value {
	t.Helper()
	dir := filepath.Join(mount, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create cgroup %s: %v", dir, err)
	}
	t.Cleanup(func() {
		// Deepest first; only the folders this test made.
		for d := dir; d != mount && strings.HasPrefix(d, mount); d = filepath.Dir(d) {
			if err := os.Remove(d); err != nil {
				break // a shared parent still in use
			}
		}
	})
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	// Right after fork, /proc shows the parent's command line.
	for i := 0; i < 200; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.HasPrefix(string(b), "sleep") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("move pid %d into %s: %v", pid, dir, err)
	}
	return UPIDOf(t, pid)
}

// UPIDOf is the UPID (ASID 0) of the running process pid, as sources
// make it: pid and start time in clock ticks since boot.
func UPIDOf(t testing.TB, pid int) types.UInt128Value {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ticks, _ := strconv.ParseUint(f[19], 10, 64)
	return types.UPID(0, uint32(pid), ticks*10_000_000)
}
