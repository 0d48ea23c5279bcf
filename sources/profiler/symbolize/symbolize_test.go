package symbolize

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/internal/testenv"
)

//go:noinline
func knownFunction() int { return 42 }

// TestThisProcess names addresses of the test binary itself: a Go
// function through the pclntab, and anonymous executable memory (as a JIT
// makes) as [anon+0xoffset].
func TestThisProcess(t *testing.T) {
	s := New()
	p := s.Process(os.Getpid(), 0)
	pc := uint64(reflect.ValueOf(knownFunction).Pointer())
	want := runtime.FuncForPC(uintptr(pc)).Name()
	if f := p.Symbolize(pc+1, false); f.Name != want || f.Kernel || f.Module == "" {
		t.Errorf("pc %#x: %+v, want %s", pc+1, f, want)
	}
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	p = s.Process(os.Getpid(), 0) // mapped after the first read
	addr := uint64(uintptr(unsafe.Pointer(&mem[0]))) + 0x10
	if f := p.Symbolize(addr, false); f.Name != "[anon+0x10]" {
		t.Errorf("anonymous memory: %+v", f)
	}
	if f := p.Symbolize(8, false); f.Name != "[unknown+0x8]" {
		t.Errorf("unmapped: %+v", f)
	}
}

// TestKernel names a kernel address inside a function listed in
// /proc/kallsyms, and one past every symbol's start as the last one.
func TestKernel(t *testing.T) {
	testenv.RequireRoot(t, "kallsyms hides its addresses from other users")
	k, err := readKallsyms("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	i := len(k.addrs) / 2
	for k.addrs[i+1] == k.addrs[i] {
		i++
	}
	s := New()
	f := s.Kernel(k.addrs[i]+1, false)
	if !f.Kernel || f.Name != k.name(i) {
		t.Errorf("%#x: %+v, want %s", k.addrs[i]+1, f, k.name(i))
	}
	// A return address at a function's first byte belongs to the caller.
	if f := s.Kernel(k.addrs[i+1], true); f.Name != k.name(i) {
		t.Errorf("return address %#x: %+v, want %s", k.addrs[i+1], f, k.name(i))
	}
}

func TestParseMaps(t *testing.T) {
	text := "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/my prog\n" +
		"00651000-00652000 rw-p 00051000 08:02 173521 /usr/bin/my prog\n" +
		"7fff5000-7fff6000 r-xp 00000000 00:00 0 [vdso]\n"
	ms, err := parseMaps(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].path != "/usr/bin/my prog" || ms[0].start != 0x400000 || ms[1].path != "[vdso]" {
		t.Fatalf("%+v", ms)
	}
	if m := find(ms, 0x451fff); m != 0 {
		t.Errorf("find: %+v", m)
	}
	if m := find(ms, 0x452000); m != -1 {
		t.Errorf("find past the end: %+v", m)
	}
}

// libFunc finds a shared library of this machine and the file offset of
// one of its exported functions.
func libFunc(t *testing.T, lib, fn string) (path string, off uint64) {
	t.Helper()
	var paths []string
	for _, pat := range []string{"/lib/*/" + lib, "/usr/lib/*/" + lib, "/lib64/" + lib} {
		m, _ := filepath.Glob(pat)
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		testenv.SkipOrFailf(t, "no %s on this machine", lib)
	}
	f, err := elf.Open(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name != fn || elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Section == elf.SHN_UNDEF {
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && s.Value >= p.Vaddr && s.Value < p.Vaddr+p.Filesz {
				return paths[0], s.Value - p.Vaddr + p.Off
			}
		}
	}
	t.Fatalf("%s has no function %s", paths[0], fn)
	return "", 0
}

// mapCopy copies path into dir as name and maps the copy, whole and
// executable, into this process, as a loader would a library: the
// symbolizer then finds it in /proc/self/maps. It returns the mapping's
// address.
func mapCopy(t *testing.T, path, dir, name string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return mapFile(t, dst)
}

func mapFile(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return uint64(uintptr(unsafe.Pointer(&mem[0])))
}

// TestReadBudget reads a new file only while the drain's budget lasts: a
// frame of a file left unread is pending, [module+0xoffset], until a
// later drain's budget reads it, and is then named as it would have been
// at once.
func TestReadBudget(t *testing.T) {
	libc, fcloseOff := libFunc(t, "libc.so.6", "fclose")
	libm, cosOff := libFunc(t, "libm.so.6", "cexp")
	dir := t.TempDir()
	cBase := mapCopy(t, libc, dir, "libc.so.6")
	mBase := mapCopy(t, libm, dir, "libm.so.6")
	pid := os.Getpid()

	want := New().Process(pid, 0).Symbolize(mBase+cosOff+1, false)
	if want.Pending() || strings.HasPrefix(want.Name, "[") {
		t.Fatalf("without a budget: %+v", want)
	}

	const budget = 32 << 10
	s := New()
	s.SetReadBudget(budget)
	s.Refill()
	p := s.Process(pid, 0)
	if f := p.Symbolize(cBase+fcloseOff+1, false); f.Pending() || strings.HasPrefix(f.Name, "[") {
		t.Fatalf("the first file is read while the budget is positive: %+v", f)
	}
	if s.credit > 0 {
		t.Fatalf("libc cost less than %d bytes: credit %d left", budget, s.credit)
	}
	frames := []Frame{p.Symbolize(mBase+cosOff+1, false)}
	if !frames[0].Pending() || frames[0].Name != fmt.Sprintf("[libm.so.6+0x%x]", want.Addr) || frames[0].Addr != want.Addr {
		t.Fatalf("past the budget: %+v, want pending [libm.so.6+0x%x]", frames[0], want.Addr)
	}
	drains := 0
	for !s.Resolve(frames) {
		if drains++; drains > 10 {
			t.Fatalf("still pending after %d drains: %+v", drains, frames[0])
		}
		s.Refill()
	}
	if drains == 0 {
		t.Errorf("named without a refill: the debt was not carried")
	}
	if f := frames[0]; f.Pending() || f.Name != want.Name || f.Addr != want.Addr {
		t.Errorf("resolved: %+v, want %+v", f, want)
	}
	if st := s.Stats(); st.Deferred != 1 || st.Indexed != 2 {
		t.Errorf("stats %+v, want 1 deferred and 2 indexed", st)
	}
}

// TestFilesReadOnce opens a file once per process and mapping, reads a
// build once whatever its path, and remembers a file that is not ELF.
func TestFilesReadOnce(t *testing.T) {
	libm, cosOff := libFunc(t, "libm.so.6", "cexp")
	dir := t.TempDir()
	a := mapCopy(t, libm, dir, "a.so")
	b := mapCopy(t, libm, dir, "b.so")
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not an ELF file\n"), 512), 0o644); err != nil {
		t.Fatal(err)
	}
	j := mapFile(t, junk)
	s := New()
	for i := 0; i < 3; i++ {
		p := s.Process(os.Getpid(), 0)
		fa, fb := p.Symbolize(a+cosOff+1, false), p.Symbolize(b+cosOff+1, false)
		if fa.Name != fb.Name || strings.HasPrefix(fa.Name, "[") {
			t.Errorf("the same build at two paths: %q and %q", fa.Name, fb.Name)
		}
		if f := p.Symbolize(j+0x10, false); f.Name != "[junk+0x10]" || f.Pending() {
			t.Errorf("not ELF: %+v", f)
		}
	}
	// Another process instance (as after the pid was reused) opens the
	// files again, and finds them known.
	s.Process(os.Getpid(), 1).Symbolize(j+0x10, false)
	st := s.Stats()
	if st.Opened != 2 || st.Indexed != 1 || st.Failed != 1 {
		t.Errorf("stats %+v, want 2 opened, 1 indexed, 1 failed", st)
	}
}

// TestTruncatedFile names nothing more from a file truncated under its
// mapping, instead of crashing on the fault.
func TestTruncatedFile(t *testing.T) {
	libm, cosOff := libFunc(t, "libm.so.6", "cexp")
	_, sinOff := libFunc(t, "libm.so.6", "remainder")
	dir := t.TempDir()
	base := mapCopy(t, libm, dir, "t.so")
	s := New()
	p := s.Process(os.Getpid(), 0)
	if f := p.Symbolize(base+cosOff+1, false); strings.HasPrefix(f.Name, "[") {
		t.Fatalf("before: %+v", f)
	}
	if err := os.Truncate(filepath.Join(dir, "t.so"), 0); err != nil {
		t.Fatal(err)
	}
	f := p.Symbolize(base+sinOff+1, false)
	if !strings.HasPrefix(f.Name, "[t.so+0x") {
		t.Errorf("after truncation: %+v", f)
	}
	if st := s.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v, want the file failed", st)
	}
}
