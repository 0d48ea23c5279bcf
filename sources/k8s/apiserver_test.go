package k8s

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
)

// One etcd and kube-apiserver pair (k8stest) serves every test of the
// package; each test uses its own namespace and node names.

var (
	clusterOnce sync.Once
	theCluster  *k8stest.Cluster
	clusterErr  error
)

// cluster returns the package's API server, starting it on first use. It
// skips the test when the binaries are missing, and fails it under
// CI=true.
func cluster(t *testing.T) *k8stest.Cluster {
	t.Helper()
	dir := testenv.KubeBinaries(t)
	clusterOnce.Do(func() {
		if theCluster, clusterErr = k8stest.Prepare(dir); clusterErr == nil {
			clusterErr = theCluster.Start()
		}
	})
	if clusterErr != nil {
		t.Fatalf("start API server: %v", clusterErr)
	}
	return theCluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theCluster != nil {
		theCluster.Stop()
	}
	os.Exit(code)
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
