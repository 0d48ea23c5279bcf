package symbolize

import (
	"os"
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
	p := s.Process(os.Getpid())
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
	p = s.Process(os.Getpid()) // mapped after the first read
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
	if !f.Kernel || f.Name != k.names[i] {
		t.Errorf("%#x: %+v, want %s", k.addrs[i]+1, f, k.names[i])
	}
	// A return address at a function's first byte belongs to the caller.
	if f := s.Kernel(k.addrs[i+1], true); f.Name != k.names[i] {
		t.Errorf("return address %#x: %+v, want %s", k.addrs[i+1], f, k.names[i])
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
	if m := find(ms, 0x451fff); m != &ms[0] {
		t.Errorf("find: %+v", m)
	}
	if m := find(ms, 0x452000); m != nil {
		t.Errorf("find past the end: %+v", m)
	}
}
