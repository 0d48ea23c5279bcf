package profiler

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/profiler/symbolize"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// burner is a test program that spends twice as much CPU in hot[0] as in
// hot[1].
type burner struct {
	name string
	cmd  *exec.Cmd
	hot  [2]string
	// root, when set, is how every stack starts.
	root string
}

// buildBurners builds testdata's programs: burn as a Go binary, the same
// stripped (-s -w), and burn.c with Debian's gcc and frame pointers.
func buildBurners(t *testing.T) []burner {
	t.Helper()
	dir := t.TempDir()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := func(name, src string, args ...string) string {
		out := filepath.Join(dir, name)
		cmd := exec.Command(args[0], append(args[1:], "-o", out, src)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, b)
		}
		return out
	}
	goHot := [2]string{"main.burnA", "main.burnB"}
	bs := []burner{
		{name: build("burn-go", "./testdata/burn", gobin, "build"), hot: goHot, root: "runtime.goexit;runtime.main;"},
		{name: build("burn-go-stripped", "./testdata/burn", gobin, "build", "-ldflags=-s -w"), hot: goHot, root: "runtime.goexit;runtime.main;"},
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		testenv.SkipOrFail(t, "gcc is not installed (apt-get install gcc)")
	}
	bs = append(bs, burner{name: build("burn-c", "testdata/burn.c", "gcc", "-O1", "-fno-omit-frame-pointer"), hot: [2]string{"burn_a", "burn_b"}})
	if b, err := exec.Command("file", bs[1].name).Output(); err == nil && !strings.Contains(string(b), "stripped") {
		t.Fatalf("%s is not stripped: %s", bs[1].name, b)
	}
	return bs
}

func (b *burner) start(t *testing.T) {
	t.Helper()
	b.cmd = exec.Command(b.name)
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.cmd.Process.Kill(); b.cmd.Wait() })
}

// leaf returns the innermost user frame of a stack.
func leaf(stack []symbolize.Frame) (int, string) {
	for i := len(stack) - 1; i >= 0; i-- {
		if !stack[i].Kernel {
			return i, stack[i].Name
		}
	}
	return -1, ""
}

// TestBurnersProportions profiles a Go program, the same program
// stripped and a C program, each burning CPU in two functions 2:1, and
// finds the functions at the top of their stacks in that proportion
// (±10 %). It samples at 499 Hz: the programs share two CPUs with
// whatever else runs, and the proportion needs several hundred samples
// each to be within 10 % by far more than chance (3.5 standard
// deviations at 600).
func TestBurnersProportions(t *testing.T) {
	testenv.RequireRoot(t, "the profiler loads a BPF program")
	bs := buildBurners(t)
	p, err := New(Config{Frequency: 499})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range bs {
		bs[i].start(t)
	}
	type tally struct {
		hot          [2]uint64
		other, total uint64
		badRoot      string
	}
	tallies := make([]tally, len(bs))
	const want = 600 // samples in the hot functions of each program
	deadline := time.Now().Add(60 * time.Second)
	for {
		time.Sleep(time.Second)
		samples, err := p.Drain()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			for i, b := range bs {
				if int(s.PID) != b.cmd.Process.Pid {
					continue
				}
				tl := &tallies[i]
				tl.total += s.Count
				at, name := leaf(s.Stack)
				switch name {
				case b.hot[0], b.hot[1]:
					k := 0
					if name == b.hot[1] {
						k = 1
					}
					tl.hot[k] += s.Count
					if st := FoldedStack(s.Stack[:at+1]); b.root != "" && !strings.HasPrefix(st, b.root) {
						tl.badRoot = st
					}
				default:
					tl.other += s.Count
				}
			}
		}
		enough := true
		for _, tl := range tallies {
			enough = enough && tl.hot[0]+tl.hot[1] >= want
		}
		if enough || time.Now().After(deadline) {
			break
		}
	}
	for i, b := range bs {
		tl := tallies[i]
		hot := tl.hot[0] + tl.hot[1]
		name := filepath.Base(b.name)
		if hot < want {
			t.Errorf("%s: %d samples in %v after 60 s (%d elsewhere), want %d", name, hot, b.hot, tl.other, want)
			continue
		}
		share := float64(tl.hot[0]) / float64(hot)
		t.Logf("%s: %s %d, %s %d (share %.3f), other %d", name, b.hot[0], tl.hot[0], b.hot[1], tl.hot[1], share, tl.other)
		if share < 2.0/3*0.9 || share > 2.0/3*1.1 {
			t.Errorf("%s: %s has %.3f of the hot samples, want 2/3 ±10%%", name, b.hot[0], share)
		}
		if float64(hot) < 0.9*float64(tl.total) {
			t.Errorf("%s: only %d of %d samples end in %v", name, hot, tl.total, b.hot)
		}
		if tl.badRoot != "" {
			t.Errorf("%s: a stack not starting with %s: %s", name, b.root, tl.badRoot)
		}
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples == 0 {
		t.Errorf("stats: %+v", st)
	}
	t.Logf("stats %+v", st)
}

// TestSourceWritesTable runs the table source over a Go burner and reads
// stack_traces.beta: the burner's stacks, root first, counted, with one
// id per stack across periods.
func TestSourceWritesTable(t *testing.T) {
	testenv.RequireRoot(t, "the profiler loads a BPF program")
	bs := buildBurners(t)[:1]
	store := table.NewStore(0)
	src, err := NewSource(SourceConfig{Config: Config{ASID: 7, Frequency: 199}, Period: time.Hour}, store)
	if err != nil {
		t.Fatal(err)
	}
	bs[0].start(t)
	time.Sleep(1500 * time.Millisecond)
	src.collect()
	if err := src.Write(time.Now()); err != nil { // the first period
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := src.Close(); err != nil { // the second
		t.Fatal(err)
	}
	pid := uint32(bs[0].cmd.Process.Pid)
	ids := map[string]map[int64]bool{}
	var counted int64
	periods := map[int64]bool{}
	for _, b := range store.Table(StackTraces.Name()).Snapshot(0, 0) {
		rec := b.Record
		times := rec.Column(0).(*array.Timestamp)
		upids := rec.Column(1).(*array.FixedSizeBinary)
		sids := rec.Column(2).(*array.Int64)
		stacks := rec.Column(3).(*array.String)
		counts := rec.Column(4).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			u := types.GetUInt128(upids.Value(i))
			if u.PID() != pid {
				continue
			}
			if u.ASID() != 7 || u.StartNS() == 0 {
				t.Errorf("upid %v", u)
			}
			st := stacks.Value(i)
			if strings.HasSuffix(st, ";main.burnA") {
				if !strings.HasPrefix(st, "runtime.goexit;runtime.main;") {
					t.Errorf("stack %q is not root first", st)
				}
				counted += counts.Value(i)
				periods[int64(times.Value(i))] = true
			}
			if ids[st] == nil {
				ids[st] = map[int64]bool{}
			}
			ids[st][sids.Value(i)] = true
		}
	}
	if counted == 0 || len(periods) != 2 {
		t.Fatalf("%d samples of main.burnA in %d periods, want some in 2", counted, len(periods))
	}
	for st, set := range ids {
		if len(set) != 1 {
			t.Errorf("stack %q has ids %v", st, set)
		}
	}
}

// TestDrainHoldsUnreadFiles profiles the burners with a read budget far
// too small for their files: drains hold the samples in files not read
// yet rather than return them unnamed, and return them named once later
// drains have read the files, so no stack is ever returned under two
// names.
func TestDrainHoldsUnreadFiles(t *testing.T) {
	testenv.RequireRoot(t, "the profiler loads a BPF program")
	bs := buildBurners(t)
	pids := map[uint32]bool{}
	for i := range bs {
		bs[i].start(t)
		pids[uint32(bs[i].cmd.Process.Pid)] = true
	}
	// Only the burners: their files are the only ones to read.
	p, err := New(Config{Frequency: 199, ReadBudget: 8 << 10, Keep: func(pid uint32) bool { return pids[pid] }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hot := map[string]uint64{}
	maxHeld := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		samples, err := p.Drain()
		if err != nil {
			t.Fatal(err)
		}
		maxHeld = max(maxHeld, p.Held())
		for _, s := range samples {
			for _, b := range bs {
				if int(s.PID) != b.cmd.Process.Pid {
					continue
				}
				for _, f := range s.Stack {
					if f.Pending() {
						t.Fatalf("a drain returned a pending frame: %+v", f)
					}
					if f.Module == b.name && strings.HasPrefix(f.Name, "[") {
						t.Fatalf("%s: a frame of the burner unnamed: %s", filepath.Base(b.name), FoldedStack(s.Stack))
					}
				}
				if _, name := leaf(s.Stack); name == b.hot[0] || name == b.hot[1] {
					hot[name] += s.Count
				}
			}
		}
		if p.Held() == 0 && len(hot) == 4 || time.Now().After(deadline) {
			break
		}
	}
	st := p.Symbolizer().Stats()
	t.Logf("symbolizer %+v, held at most %d, hot %v", st, maxHeld, hot)
	if st.Deferred == 0 || maxHeld == 0 {
		t.Errorf("the budget never deferred a file (%+v)", st)
	}
	if len(hot) != 4 || p.Held() != 0 {
		t.Errorf("after 30 s: hot functions %v, %d samples held", hot, p.Held())
	}
}
