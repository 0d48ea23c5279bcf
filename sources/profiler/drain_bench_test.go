package profiler

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/profiler/symbolize"
)

// burnEnv makes the test binary a CPU burner instead of running tests:
// the churn benchmark execs copies of it, each with a build id of its
// own, as a stand-in for freshly built binaries of realistic size.
const burnEnv = "PXQ_PROFILER_BURN"

func TestMain(m *testing.M) {
	if os.Getenv(burnEnv) != "" {
		x := uint64(1)
		for {
			for i := 0; i < 1<<20; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
			burnSink = x
		}
	}
	os.Exit(m.Run())
}

var burnSink uint64

// BenchmarkDrainCost measures the CPU of Drain at 100 Hz per CPU, in
// milliseconds of CPU per second profiled, in rounds that alternate three
// regimes (one interleaved run, medians over the rounds), with one
// profiler and its caches kept across rounds:
//
//   - steady: a fixed set of busy processes (a Go program, the same
//     stripped, a C program), whose binaries are read already;
//   - churn: the same plus two processes started each round from binaries
//     never seen before (copies of this test binary, ~20 MB, each with a
//     build id of its own), read within the drain's budget;
//   - machine: every process of this machine, whatever it runs.
//
// Each round's window is one second. Run with -benchtime=1x.
func BenchmarkDrainCost(b *testing.B) {
	testenv.RequireRoot(b, "the profiler loads a BPF program")
	dir := b.TempDir()
	fixed := startFixed(b, dir)
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Config{Frequency: 100, ReadBudget: DefaultReadBudget})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const rounds = 7
	const window = time.Second
	var mu sync.Mutex
	keep := map[uint32]bool{}
	for _, c := range fixed {
		keep[uint32(c.Process.Pid)] = true
	}
	all := false
	p.cfg.Keep = func(pid uint32) bool {
		mu.Lock()
		defer mu.Unlock()
		return all || keep[pid]
	}
	// measure drains, runs start, waits a window and returns the CPU of
	// the drain that reads it, in ms per second, and its samples.
	measure := func(start func()) (float64, []Sample) {
		p.Drain() // from the start of the window
		start()
		time.Sleep(window)
		var samples []Sample
		cpu, err := threadCPU(func() error {
			var err error
			samples, err = p.Drain()
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return float64(cpu.Microseconds()) / 1000 / window.Seconds(), samples
	}
	nothing := func() {}
	// Warm the caches with the fixed processes.
	measure(nothing)
	measure(nothing)
	var steady, churn, machine []float64
	var freshSamples, freshNamed uint64
	for r := 0; r < rounds; r++ {
		ms, _ := measure(nothing)
		steady = append(steady, ms)

		var fresh []*exec.Cmd
		startFresh := func() {
			for i := 0; i < 2; i++ {
				bin := filepath.Join(dir, fmt.Sprintf("fresh-%d-%d", r, i))
				if err := copyWithBuildID(self, bin, fmt.Sprintf("%02d%02d", r, i)); err != nil {
					b.Fatal(err)
				}
				c := exec.Command(bin)
				c.Env = append(os.Environ(), burnEnv+"=1")
				if err := c.Start(); err != nil {
					b.Fatal(err)
				}
				fresh = append(fresh, c)
				mu.Lock()
				keep[uint32(c.Process.Pid)] = true
				mu.Unlock()
			}
		}
		ms, samples := measure(startFresh)
		churn = append(churn, ms)
		for _, s := range samples {
			for _, c := range fresh {
				if int(s.PID) == c.Process.Pid {
					freshSamples += s.Count
					if !unnamedIn(s.Stack, "fresh-") {
						freshNamed += s.Count
					}
				}
			}
		}
		for _, c := range fresh {
			c.Process.Kill()
			c.Wait()
		}

		mu.Lock()
		all = true
		mu.Unlock()
		ms, _ = measure(nothing)
		machine = append(machine, ms)
		mu.Lock()
		all = false
		mu.Unlock()
	}
	b.ReportMetric(median(steady), "steady-ms/s")
	b.ReportMetric(median(churn), "churn-ms/s")
	b.ReportMetric(median(machine), "machine-ms/s")
	if freshSamples == 0 || freshNamed != freshSamples {
		b.Errorf("new binaries: %d of %d samples named in their files in the drain after they started", freshNamed, freshSamples)
	}
	st := p.sym.Stats()
	b.Logf("symbolizer %+v, held %d, batch counts %v, stack lookup-and-delete %d", st, p.Held(), !p.noBatch, p.stackDelete)
}

// unnamedIn says a stack has a frame of a file whose base name starts
// with prefix that is not named.
func unnamedIn(stack []symbolize.Frame, prefix string) bool {
	for _, f := range stack {
		if strings.HasPrefix(filepath.Base(f.Module), prefix) && strings.HasPrefix(f.Name, "[") {
			return true
		}
	}
	return false
}

// startFixed builds and starts the steady regime's processes.
func startFixed(b *testing.B, dir string) []*exec.Cmd {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	builds := [][]string{
		{gobin, "build", "-o", filepath.Join(dir, "burn-go"), "./testdata/burn"},
		{gobin, "build", "-ldflags=-s -w", "-o", filepath.Join(dir, "burn-go-stripped"), "./testdata/burn"},
		{"gcc", "-O1", "-fno-omit-frame-pointer", "-o", filepath.Join(dir, "burn-c"), "testdata/burn.c"},
	}
	var cmds []*exec.Cmd
	for _, args := range builds {
		c := exec.Command(args[0], args[1:]...)
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	for _, name := range []string{"burn-go", "burn-go-stripped", "burn-c"} {
		c := exec.Command(filepath.Join(dir, name))
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Process.Kill(); c.Wait() })
		cmds = append(cmds, c)
	}
	return cmds
}

// copyWithBuildID copies the ELF file src to dst (executable) with its
// build id notes' descriptors overwritten from tag, so that it is a file
// the symbolizer has never seen under any key.
func copyWithBuildID(src, dst, tag string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	f, err := elf.NewFile(in)
	if err != nil {
		out.Close()
		return err
	}
	for _, name := range []string{".note.go.buildid", ".note.gnu.build-id"} {
		sec := f.Section(name)
		if sec == nil || sec.Size < 16 {
			continue
		}
		// The descriptor follows the 12-byte header and the 4-byte
		// aligned owner name ("Go\0\0" or "GNU\0"); overwrite its start.
		if _, err := out.WriteAt([]byte(tag), int64(sec.Offset)+16); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// BenchmarkReadNewFile measures what a file never seen before costs the
// symbolizer: mapping and identifying a copy of this test binary (a
// dynamically linked Go binary, so its .symtab is read for C functions
// too) with a build id of its own, and reading its tables, per file and
// per MiB of read budget it is charged.
func BenchmarkReadNewFile(b *testing.B) {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	pc := uint64(reflect.ValueOf(BenchmarkReadNewFile).Pointer())
	var bytesCharged uint64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		bin := filepath.Join(dir, fmt.Sprintf("copy-%d", i))
		if err := copyWithBuildID(self, bin, fmt.Sprintf("%04d", i)); err != nil {
			b.Fatal(err)
		}
		base, unmap := mapExec(b, bin)
		sym := symbolize.New()
		b.StartTimer()
		t0 := time.Now()
		f := sym.Process(os.Getpid(), 0).Symbolize(base+textOffset(b, self, pc), false)
		elapsed += time.Since(t0)
		b.StopTimer()
		if strings.HasPrefix(f.Name, "[") {
			b.Fatalf("not named: %+v", f)
		}
		bytesCharged += sym.Stats().IndexedBytes
		unmap()
		os.Remove(bin)
		b.StartTimer()
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/1e6/(float64(bytesCharged)/(1<<20)), "ms/MiB")
	b.ReportMetric(float64(bytesCharged)/float64(b.N)/(1<<20), "MiB-charged/file")
}

// mapExec maps path whole and executable into this process.
func mapExec(b *testing.B, path string) (uint64, func()) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
	if err != nil {
		b.Fatal(err)
	}
	return uint64(uintptr(unsafe.Pointer(&mem[0]))), func() { unix.Munmap(mem) }
}

// textOffset returns the file offset of the address pc of this binary.
func textOffset(b *testing.B, path string, pc uint64) uint64 {
	f, err := elf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && pc >= p.Vaddr && pc < p.Vaddr+p.Filesz {
			return pc - p.Vaddr + p.Off
		}
	}
	b.Fatalf("%#x is in no segment of %s", pc, path)
	return 0
}
