package k8s

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/types"
)

// needCgroups stops the test (testenv.SkipOrFail) unless it can make
// cgroups: as root, with cgroup v2 mounted. It returns the mounts, as
// cgroupMounts does.
func needCgroups(t *testing.T) (v2, v1memory string) {
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
func cgroupMounts(t *testing.T) (v2, v1memory string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "… mountpoint … - fstype source superoptions"
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
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

// inCgroup starts `sleep` and moves it into a new cgroup at mount/rel,
// named as kubelet and the runtime name it; cleanup kills it and removes
// the folders.
func inCgroup(t *testing.T, mount, rel string) types.UInt128Value {
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ticks, _ := strconv.ParseUint(f[19], 10, 64)
	return types.UPID(0, uint32(pid), ticks*10_000_000)
}

// TestProcessToPod proves pid → container → pod with real processes in
// real cgroups named like kubelet's (cgroup v2 with the systemd driver,
// and cgroup v1 with the cgroupfs driver), against pods in a real API
// server.
func TestProcessToPod(t *testing.T) {
	v2, v1mem := needCgroups(t)
	c := cluster(t)
	store := startWatch(t, c)
	f := &fixture{t: t, ctx: context.Background(), client: c.client, ns: "pxq-cgroup"}
	_, err := c.client.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{})
	f.check(err, "create namespace")

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
