package metadata

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/types"
)

// startSleep runs a real child process and returns it with its UPID.
func startSleep(t *testing.T) (*exec.Cmd, types.UInt128Value) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Right after fork, /proc shows the parent's command line.
	for i := 0; i < 200; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); strings.HasPrefix(string(b), "sleep") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	start, err := readStartNS("/proc", uint32(cmd.Process.Pid))
	if err != nil {
		t.Fatalf("start time: %v", err)
	}
	return cmd, types.UPID(7, uint32(cmd.Process.Pid), start)
}

func TestHostProcess(t *testing.T) {
	h, err := NewHost()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Hostname()
	if h.Hostname() != want {
		t.Fatalf("Hostname = %q, want %q", h.Hostname(), want)
	}
	cmd, upid := startSleep(t)
	p := h.Process(upid)
	if p == nil {
		t.Fatalf("Process(%v) = nil", upid)
	}
	if p.PID != int64(cmd.Process.Pid) || p.Cmdline != "sleep 300" || p.Hostname != want || p.Cgroup == "" {
		t.Fatalf("Process = %+v", p)
	}
	// It belongs to a host entity, whose pod Host answers for.
	e, ok := EntityOf(p)
	if pod := h.Pod(p.PodUID); !ok || pod == nil || pod.QualifiedName() != e.QualifiedName() || pod.NodeName != want {
		t.Fatalf("pod of %+v = %+v (entity %+v)", p, pod, e)
	}
	if d := time.Since(time.Unix(0, p.StartNS)); d < -2*time.Second || d > time.Minute {
		t.Fatalf("StartNS %d is %v from now", p.StartNS, d)
	}
	// A UPID with the right pid but another start time is another process.
	stale := upid
	stale.Low -= procfs.TickNS
	if p := h.Process(stale); p != nil {
		t.Fatalf("Process(stale UPID) = %+v, want nil", p)
	}
	// The process stays known after it exits (cached), until its pid is
	// reused.
	cmd.Process.Kill()
	cmd.Wait()
	if p := h.Process(upid); p == nil || p.Cmdline != "sleep 300" {
		t.Fatalf("Process after exit = %+v", p)
	}
	// What is neither a host entity nor a local address is unknown.
	if h.Pod("x") != nil || h.PodByIP("192.0.2.1", 0) != nil || h.ServiceByName("a/b") != nil ||
		h.ReplicaSetByName("a/b") != nil || h.DeploymentByName("a/b") != nil || h.ServiceByIP("127.0.0.1") != nil {
		t.Fatal("host mode answered an unknown lookup")
	}
}

func TestProcessesObserve(t *testing.T) {
	ps := NewProcesses("/proc", "h1")
	// A pid beyond pid_max never runs: only Observe can make it known.
	upid := types.UPID(1, 1<<30, 12345*procfs.TickNS)
	if ps.Lookup(upid) != nil {
		t.Fatal("unknown process resolved")
	}
	ps.Observe(Process{UPID: upid, Cmdline: "gone --flag", ContainerID: strings.Repeat("a", 64)})
	p := ps.Lookup(upid)
	if p == nil || p.Cmdline != "gone --flag" || p.Hostname != "h1" || p.PID != 1<<30 {
		t.Fatalf("observed process = %+v", p)
	}
}

// TestHostConcurrent resolves processes and their entities from several
// goroutines at once (run with -race).
func TestHostConcurrent(t *testing.T) {
	h, err := NewHost()
	if err != nil {
		t.Fatal(err)
	}
	_, a := startSleep(t)
	_, b := startSleep(t)
	done := make(chan string, 8)
	for i := 0; i < 8; i++ {
		go func(u types.UInt128Value) {
			p := h.Process(u)
			if p == nil {
				done <- "unknown process"
				return
			}
			pod := h.Pod(p.PodUID)
			if pod == nil || h.PodByName(pod.QualifiedName()) == nil || h.Namespace(pod.Namespace) == nil || len(h.Names("pod")) == 0 {
				done <- fmt.Sprintf("pod of %+v: %+v", p, pod)
				return
			}
			done <- ""
		}([]types.UInt128Value{a, b}[i%2])
	}
	for i := 0; i < 8; i++ {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}

// TestHostEntitiesBounded: past maxEntities the index is rebuilt from the
// cached processes, each of which still names a known pod.
func TestHostEntitiesBounded(t *testing.T) {
	h, err := NewHost()
	if err != nil {
		t.Fatal(err)
	}
	// Pids beyond pid_max never run: only Observe makes them known.
	for i := 0; i < maxEntities+100; i++ {
		h.procs.Observe(Process{UPID: types.UPID(0, uint32(1<<30+i), uint64(i+1)*procfs.TickNS), Cmdline: fmt.Sprintf("app%d --flag", i)})
	}
	h.mu.RLock()
	n := h.idx.npods
	h.mu.RUnlock()
	if n >= maxEntities {
		t.Errorf("%d entities kept, bound %d", n, maxEntities)
	}
	cached := h.procs.all()
	if len(cached) == 0 {
		t.Fatal("no process cached")
	}
	for _, p := range cached {
		if pod := h.Pod(p.PodUID); pod == nil || pod.Name != strings.Fields(p.Cmdline)[0] {
			t.Fatalf("cached %+v has pod %+v", p, pod)
		}
	}
	if h.PodByIP("127.0.0.1", 0) == nil {
		t.Error("the host's own pod was lost in a rebuild")
	}
}

// A process looked up before it execs (here a shell that execs sleep, as
// an entrypoint script does; the same pid and start time) is read again
// once it is no longer young: its command line is the program's, not the
// shell's, and it is read once more only.
func TestProcessesExecAfterLookup(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 0.3; exec sleep 300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := uint32(cmd.Process.Pid)
	var start uint64
	for i := 0; ; i++ {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(b), "sh\x00") {
			var err error
			if start, err = readStartNS("/proc", pid); err != nil {
				t.Fatal(err)
			}
			break
		}
		if i > 200 {
			t.Fatalf("the shell did not start: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ps := NewProcesses("/proc", "h1")
	ps.youngNS = int64(time.Second)
	upid := types.UPID(7, pid, start)
	if p := ps.Lookup(upid); p == nil || !strings.HasPrefix(p.Cmdline, "sh -c") {
		t.Fatalf("before the exec: %+v", p)
	}
	// Still young: the cached entry.
	if p := ps.Lookup(upid); !strings.HasPrefix(p.Cmdline, "sh -c") {
		t.Fatalf("young: %+v", p)
	}
	time.Sleep(time.Until(time.Unix(0, ps.Lookup(upid).StartNS+ps.youngNS)) + 50*time.Millisecond)
	if p := ps.Lookup(upid); p.Cmdline != "sleep 300" || p.UPID != upid {
		t.Fatalf("after the exec: %+v", p)
	}
	ps.mu.RLock()
	_, again := ps.recheck[pid]
	ps.mu.RUnlock()
	if again {
		t.Error("read again twice")
	}
}
