package profiler_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/profiler"
)

// burnGo builds and starts testdata/burn, stopped when the test ends.
func burnGo(t *testing.T) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "burn")
	if b, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "./testdata/burn").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	cmd := exec.Command(bin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestFlamegraphScript profiles a Go program into an engine's store and
// runs the library's px/perf_flamegraph over it: the program's stacks
// come out summed, with its hot function at their top.
func TestFlamegraphScript(t *testing.T) {
	testenv.RequireRoot(t, "the profiler loads a BPF program")
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := profiler.NewSource(profiler.SourceConfig{Config: profiler.Config{ASID: eng.ASID(), Frequency: 199}, Period: time.Hour}, eng.Store())
	if err != nil {
		t.Fatal(err)
	}
	cmd := burnGo(t)
	time.Sleep(3 * time.Second)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := scripts.NewLibrary().Get("px/perf_flamegraph")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := eng.Collect(context.Background(), engine.Query{Script: s, Args: map[string]string{"process": fmt.Sprintf("pid %d", cmd.Process.Pid)}})
	if err != nil {
		t.Fatal(err)
	}
	var hot, all int64
	for _, tb := range tables {
		if tb.Name != "Flame graph" && tb.Name != "stacks" {
			continue
		}
		for _, rec := range tb.Records {
			st := rec.Column(int(rec.Schema().FieldIndices("stack_trace")[0])).(*array.String)
			ct := rec.Column(int(rec.Schema().FieldIndices("count")[0])).(*array.Int64)
			for i := 0; i < int(rec.NumRows()); i++ {
				all += ct.Value(i)
				if strings.HasSuffix(st.Value(i), ";main.burnA") || strings.HasSuffix(st.Value(i), ";main.burnB") {
					hot += ct.Value(i)
				}
			}
		}
	}
	if hot == 0 || float64(hot) < 0.9*float64(all) {
		var names []string
		for _, tb := range tables {
			names = append(names, tb.Name)
		}
		t.Fatalf("%d of %d samples in main.burnA/B; tables %v", hot, all, names)
	}
}

// TestPprofOpens writes a profile of a Go program and reads it back with
// `go tool pprof -top`, which lists the program's hot functions first.
func TestPprofOpens(t *testing.T) {
	testenv.RequireRoot(t, "the profiler loads a BPF program")
	cmd := burnGo(t)
	pid := uint32(cmd.Process.Pid)
	p, err := profiler.New(profiler.Config{Frequency: 199, Keep: func(p uint32) bool { return p == pid }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	time.Sleep(3 * time.Second)
	samples, err := p.Drain()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if s.PID != pid {
			t.Fatalf("Keep let pid %d through", s.PID)
		}
	}
	file := filepath.Join(t.TempDir(), "cpu.pprof")
	var buf bytes.Buffer
	if err := profiler.WritePprof(&buf, samples, 199, time.Now(), time.Since(start)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "tool", "pprof", "-top", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	// The first two functions by flat time are the hot ones, A first.
	var flat []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && strings.HasSuffix(f[1], "%") {
			flat = append(flat, f[5])
		}
	}
	if len(flat) < 2 || flat[0] != "main.burnA" || flat[1] != "main.burnB" {
		t.Fatalf("pprof -top:\n%s", out)
	}
}
