package scripts_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/jvm"
)

// TestJVMStatsScript runs a real JVM (sources/jvm/testdata/Alloc.java),
// samples it twice into jvm_stats around two full collections, and
// checks what px/jvm_stats says of it against its hsperfdata counters.
func TestJVMStatsScript(t *testing.T) {
	for _, tool := range []string{"java", "javac"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFailf(t, "no %s on $PATH: apt-get install -y default-jdk-headless", tool)
		}
	}
	classes := t.TempDir()
	if out, err := exec.Command("javac", "-d", classes, filepath.Join("..", "sources", "jvm", "testdata", "Alloc.java")).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	cmd := exec.Command("java", "-Xmx64m", "-XX:+UseSerialGC", "-cp", classes, "Alloc")
	in, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGCONT); cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewScanner(stdout)
	do := func(c string) {
		t.Helper()
		if c != "" {
			fmt.Fprintln(in, c)
		}
		if !out.Scan() || out.Text() != "ok" {
			t.Fatalf("java: %q %v", out.Text(), out.Err())
		}
	}
	do("")
	do("alloc 100")

	host, err := metadata.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Meta: host})
	if err != nil {
		t.Fatal(err)
	}
	r, err := jvm.NewReader(jvm.Config{ASID: eng.ASID()}, eng.Store())
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// sample reads the JVM stopped, with its counters as the reader saw
	// them.
	sample := func(at time.Time) jvm.Stats {
		t.Helper()
		cmd.Process.Signal(syscall.SIGSTOP)
		defer cmd.Process.Signal(syscall.SIGCONT)
		if err := r.Sample(at); err != nil {
			t.Fatal(err)
		}
		ps, err := jvm.Find("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.PID == pid {
				b, err := os.ReadFile(p.Path)
				if err != nil {
					t.Fatal(err)
				}
				pd, err := jvm.Parse(b)
				if err != nil {
					t.Fatal(err)
				}
				s, err := jvm.StatsOf(pd)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}
		t.Fatalf("the JVM (pid %d) is not found", pid)
		return jvm.Stats{}
	}
	now := time.Now()
	s1 := sample(now.Add(-20 * time.Second))
	do("gc 2")
	s2 := sample(now.Add(-10 * time.Second))

	env := &captureEnv{eng: eng, now: now}
	res := env.run(t, "px/jvm_stats", map[string]string{"start_time": "-5m"})
	var row map[string]any
	for _, rw := range res["jvm_stats"].rows {
		if fmt.Sprint(rw["pid"]) == fmt.Sprint(pid) {
			row = rw
		}
	}
	if row == nil {
		t.Fatalf("no row of pid %d in %v", pid, res["jvm_stats"].rows)
	}
	// Named by its pod: on a plain host, its host entity (host/java).
	if jvmName := fmt.Sprint(row["jvm"]); !strings.Contains(jvmName, "java") {
		t.Errorf("jvm %q, want its host entity or command line", jvmName)
	}
	wantFull := float64(s2.FullGCTime-s1.FullGCTime) / float64(10*time.Second)
	checks := []struct {
		col  string
		want float64
	}{
		{"samples", 2},
		{"peak", float64(max(s1.UsedHeap, s2.UsedHeap))},
		{"committed", float64(max(s1.CommittedHeap, s2.CommittedHeap))},
		{"max_heap", float64(s2.MaxHeap)},
		{"full_gc", wantFull},
		{"gc_time", float64(s2.YoungGCTime + s2.FullGCTime)},
	}
	for _, c := range checks {
		got, ok := asFloat(row[c.col])
		if !ok || got < c.want*(1-1e-9)-1e-12 || got > c.want*(1+1e-9)+1e-12 {
			t.Errorf("%s = %v, want %v", c.col, row[c.col], c.want)
		}
	}
	if s2.FullGCs != s1.FullGCs+2 || wantFull <= 0 {
		t.Errorf("full GCs %d then %d", s1.FullGCs, s2.FullGCs)
	}
	if _, ok := res["heap"]; !ok {
		t.Errorf("no heap widget output: %v", res)
	}
}

func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}
