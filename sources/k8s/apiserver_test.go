package k8s

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pxq-dev/pxq/internal/testenv"
)

// This file runs a real etcd and kube-apiserver for the package's tests,
// built by test/k8s/build.sh. One pair serves every test of the package;
// each test uses its own namespace and node names.

// testCluster is a running etcd + kube-apiserver pair.
type testCluster struct {
	config  *rest.Config
	client  kubernetes.Interface
	dir     string
	etcd    *exec.Cmd
	apisrv  *exec.Cmd
	stopped chan struct{}
}

var (
	clusterOnce sync.Once
	theCluster  *testCluster
	clusterErr  error
)

// cluster returns the package's API server, starting it on first use. It
// skips the test when the binaries are missing, and fails it under
// CI=true.
func cluster(t *testing.T) *testCluster {
	t.Helper()
	dir := testenv.KubeBinaries(t)
	clusterOnce.Do(func() { theCluster, clusterErr = startCluster(dir) })
	if clusterErr != nil {
		t.Fatalf("start API server: %v", clusterErr)
	}
	return theCluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theCluster != nil {
		theCluster.stop()
	}
	os.Exit(code)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startCluster(bins string) (_ *testCluster, err error) {
	dir, err := os.MkdirTemp("", "pxq-k8s-")
	if err != nil {
		return nil, err
	}
	c := &testCluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	c.etcd = command(filepath.Join(bins, "etcd"), filepath.Join(dir, "etcd.log"),
		"--name=pxq", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=pxq="+peerURL, "--unsafe-no-fsync")
	if err := c.etcd.Start(); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
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
		"tokens.csv": []byte(`pxq-test-token,admin,1,"system:masters"` + "\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	c.apisrv = command(filepath.Join(bins, "kube-apiserver"), filepath.Join(dir, "apiserver.log"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		"--disable-admission-plugins=ServiceAccount")
	if err := c.apisrv.Start(); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	c.stopped = make(chan struct{})
	go func() { c.apisrv.Wait(); close(c.stopped) }()

	c.config = &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", ports[2]),
		BearerToken:     "pxq-test-token",
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		WarningHandler:  rest.NoWarnings{}, // "v1 Endpoints is deprecated"
		QPS:             200,
		Burst:           400,
	}
	if err := c.waitReady(60 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "apiserver.log"))
		if len(log) > 4000 {
			log = log[len(log)-4000:]
		}
		return nil, fmt.Errorf("%w\napiserver log tail:\n%s", err, log)
	}
	if c.client, err = kubernetes.NewForConfig(c.config); err != nil {
		return nil, err
	}
	return c, nil
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

func (c *testCluster) waitReady(timeout time.Duration) error {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-c.stopped:
			return fmt.Errorf("kube-apiserver exited: %v", c.apisrv.ProcessState)
		default:
		}
		req, _ := http.NewRequest("GET", c.config.Host+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.config.BearerToken)
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

// stop ends the API server before etcd, gracefully then not.
func (c *testCluster) stop() {
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
	os.RemoveAll(c.dir)
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
