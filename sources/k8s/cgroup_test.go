package k8s

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
	"github.com/pxq-dev/pxq/types"
)

// needCgroups stops the test unless it can make cgroups (k8stest.Cgroups).
func needCgroups(t *testing.T) (v2, v1memory string) { return k8stest.Cgroups(t) }

// inCgroup starts `sleep` in a new cgroup at mount/rel (k8stest.InCgroup).
func inCgroup(t *testing.T, mount, rel string) types.UInt128Value {
	return k8stest.InCgroup(t, mount, rel)
}

// TestProcessToPod proves pid → container → pod with real processes in
// real cgroups named like kubelet's (cgroup v2 with the systemd driver,
// and cgroup v1 with the cgroupfs driver), against pods in a real API
// server.
func TestProcessToPod(t *testing.T) {
	v2, v1mem := needCgroups(t)
	c := cluster(t)
	store := startWatch(t, c)
	f, _ := newFixture(t, c, "pxq-cgroup")

	cidA, cidB := newContainerID(t), newContainerID(t)
	podA := f.runningPod("api-0", "node-cgroup-1", "10.244.2.3", cidA, nil, nil)
	podB := f.runningPod("db-0", "node-cgroup-1", "10.244.2.4", cidB, nil, nil)
	eventually(t, "containers", func() bool { return store.Container(cidA) != nil && store.Container(cidB) != nil })

	// cgroup v2, systemd driver, containerd.
	uidA := strings.ReplaceAll(string(podA.UID), "-", "_")
	upidA := inCgroup(t, v2, fmt.Sprintf("pxqtest-kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-%s.scope", uidA, cidA))
	p := store.Process(upidA)
	if p == nil || p.ContainerID != cidA || p.PodUID != string(podA.UID) || p.ContainerName != "app" || p.Cmdline != "sleep 300" {
		t.Fatalf("Process in a v2 kubelet cgroup = %+v", p)
	}
	if pod := store.Pod(p.PodUID); pod == nil || pod.QualifiedName() != f.ns+"/api-0" {
		t.Fatalf("pod of the process = %+v", pod)
	}

	// cgroup v1 memory controller, cgroupfs driver: kubepods/<qos>/pod<uid>/<id>.
	if v1mem == "" {
		t.Log("no cgroup v1 memory controller: v1 layout not tried")
		return
	}
	upidB := inCgroup(t, v1mem, fmt.Sprintf("pxqtest-kubepods/besteffort/pod%s/%s", podB.UID, cidB))
	p = store.Process(upidB)
	if p == nil || p.ContainerID != cidB || p.PodUID != string(podB.UID) || p.ContainerName != "app" {
		t.Fatalf("Process in a v1 kubelet cgroup = %+v", p)
	}
}
