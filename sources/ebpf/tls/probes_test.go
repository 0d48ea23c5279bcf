package tls

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/pxq-dev/pxq/internal/testenv"
)

// emptyPrograms loads programs that do nothing, for the probes.
func emptyPrograms(t testing.TB, perfEvents bool) Programs {
	testenv.RequireRoot(t, "load BPF programs")
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	load := func(at ebpf.AttachType) (*ebpf.Program, error) {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Type:         ebpf.Kprobe,
			AttachType:   at,
			License:      "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		})
		if err == nil {
			t.Cleanup(func() { p.Close() })
		}
		return p, err
	}
	prog := func() *ebpf.Program {
		p, err := load(ebpf.AttachNone)
		if err != nil {
			testenv.SkipOrFailf(t, "cannot load a BPF program: %v", err)
		}
		return p
	}
	ps := Programs{Entry: map[string]*ebpf.Program{}, Return: prog()}
	for _, fn := range Funcs {
		ps.Entry[fn] = prog()
	}
	if !perfEvents {
		// Without uprobe_multi (before Linux 6.6) the Prober uses perf
		// events, as with perfEvents.
		ps.Multi, _ = load(ebpf.AttachTraceUprobeMulti)
		ps.MultiReturn, _ = load(ebpf.AttachTraceUprobeMulti)
	}
	return ps
}

// probes is how many links the probes of the library at path are: two
// uprobe_multi links, or two perf events per probe (Placement).
func probes(t *testing.T, ps Programs, path string) string {
	if ps.Multi != nil {
		return `"probes":2`
	}
	return fmt.Sprintf(`"probes":%d`, 2*len(placementOf(t, path)))
}

// copyFile copies src to dir/name (a new inode) and returns its path.
func copyFile(t *testing.T, src, dir, name string) string {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Each file is probed once, whatever the paths it is found by; past
// MaxFiles a file with SSL functions is reported, not probed; Detach and
// Attach remove and set every probe.
func TestProberFiles(t *testing.T) {
	for _, perf := range []bool{false, true} {
		t.Run(fmt.Sprintf("perfEvents=%v", perf), func(t *testing.T) { proberFiles(t, perf) })
	}
}

func proberFiles(t *testing.T, perfEvents bool) {
	ps := emptyPrograms(t, perfEvents)
	p := New(Config{Programs: ps, MaxFiles: 1})
	defer p.Close()
	lib := hostLibssl(t)
	dir := t.TempDir()
	a := copyFile(t, lib, dir, "libssl.so.a")
	b := copyFile(t, lib, dir, "libssl.so.b")
	link := filepath.Join(dir, "libssl.so")
	os.Symlink(a, link)
	for _, path := range []string{a, link, b} {
		if err := p.Path(path); err != nil {
			t.Fatal(err)
		}
	}
	files := p.Files()
	if len(files) != 2 {
		t.Fatalf("files %+v, want a and b", files)
	}
	if files[0].Name != "uprobe:"+a || files[0].Err != nil || !strings.Contains(files[0].Info, probes(t, ps, lib)) {
		t.Errorf("a: %+v", files[0])
	}
	if files[1].Name != "uprobe:"+b || files[1].Err == nil || !strings.Contains(files[1].Err.Error(), "MaxFiles") {
		t.Errorf("b: %+v", files[1])
	}
	st := p.Stats()
	if st.FilesExamined != 2 || st.FilesProbed != 1 || st.FilesOverMax != 1 || st.FilesFailed != 1 {
		t.Errorf("stats %+v", st)
	}
	p.Detach()
	if f := p.Files()[0]; !strings.Contains(f.Info, `"probes":0`) {
		t.Errorf("detached: %+v", f)
	}
	// The copy is deleted: the probes are set again through the file
	// the prober holds.
	os.Remove(a)
	p.Attach()
	if f := p.Files()[0]; f.Err != nil || !strings.Contains(f.Info, probes(t, ps, lib)) {
		t.Errorf("attached again: %+v", f)
	}
	if st := p.Stats(); st.FilesProbed != 1 {
		t.Errorf("probed counted twice: %+v", st)
	}
}

// A file named libssl that defines no SSL function is reported with the
// reason; other files without them are only remembered.
func TestProberLibsslWithoutSymbols(t *testing.T) {
	p := New(Config{Programs: emptyPrograms(t, false)})
	defer p.Close()
	exe, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	named := copyFile(t, exe, dir, "libssl.so.9")
	other := copyFile(t, exe, dir, "other")
	for _, path := range []string{named, other} {
		if err := p.Path(path); err != nil {
			t.Fatal(err)
		}
	}
	files := p.Files()
	if len(files) != 1 || files[0].Name != "uprobe:"+named || files[0].Err == nil ||
		!strings.Contains(files[0].Err.Error(), "no SSL_write or SSL_read symbol") {
		t.Errorf("files %+v", files)
	}
}

// A process that exited before it is examined is an error, counted.
func TestProberProcessGone(t *testing.T) {
	p := New(Config{Programs: emptyPrograms(t, false)})
	defer p.Close()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	err := p.Process(uint32(cmd.Process.Pid))
	if !errors.Is(err, errGone) {
		t.Errorf("Process of an exited process: %v", err)
	}
	if st := p.Stats(); st.ProcessesGone != 1 {
		t.Errorf("stats %+v", st)
	}
	// This process maps no SSL library (Go's TLS is its own).
	if err := p.Process(uint32(os.Getpid())); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Processes != 1 || st.FilesExamined == 0 || st.FilesProbed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// BenchmarkProbedCall is what the probes cost a process per call, apart
// from their programs (empty here): testdata/calls calls an empty
// SSL_write 20,000 times, unprobed, with an entry probe, and with entry
// and return probes as the Prober sets them (uprobe_multi links), in
// rounds; the metrics are the medians of its ns per call.
//
//	go test -run XXX -bench ProbedCall -benchtime 1x ./sources/ebpf/tls/
func BenchmarkProbedCall(b *testing.B) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		testenv.SkipOrFailf(b, "no C compiler: %v", err)
	}
	bin := filepath.Join(b.TempDir(), "calls")
	if out, err := exec.Command(cc, "-O2", "-o", bin, "testdata/calls.c").CombinedOutput(); err != nil {
		b.Fatalf("cc: %v: %s", err, out)
	}
	ps := emptyPrograms(b, false)
	f, err := os.Open(bin)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	funcs, err := Symbols(f)
	if err != nil || funcs[FuncWrite] == 0 {
		b.Fatalf("symbols %v: %v", funcs, err)
	}
	ex, err := link.OpenExecutable(bin)
	if err != nil {
		b.Fatal(err)
	}
	run := func() float64 {
		out, err := exec.Command(bin, "20000").Output()
		if err != nil {
			b.Fatal(err)
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			b.Fatal(err)
		}
		return ns
	}
	results := map[string][]float64{}
	for r := 0; r < 5; r++ {
		results["none"] = append(results["none"], run())
		l, err := ex.Uprobe(FuncWrite, ps.Entry[FuncWrite], &link.UprobeOptions{Address: funcs[FuncWrite]})
		if err != nil {
			b.Fatal(err)
		}
		results["entry"] = append(results["entry"], run())
		l.Close()
		p := New(Config{Programs: ps})
		if err := p.Path(bin); err != nil {
			b.Fatal(err)
		}
		results["entry+return"] = append(results["entry+return"], run())
		p.Close()
	}
	for _, mode := range []string{"none", "entry", "entry+return"} {
		v := slices.Clone(results[mode])
		slices.Sort(v)
		b.ReportMetric(v[len(v)/2], "ns/call-"+mode)
	}
}
