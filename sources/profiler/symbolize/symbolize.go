// Package symbolize names the addresses of sampled stacks: kernel
// addresses from /proc/kallsyms, user addresses through /proc/PID/maps to
// the mapped file and its symbols (Go's pclntab, which stripped Go
// binaries keep, else the ELF symbol tables). Files are read once per
// build id. An address that cannot be named becomes "[module+0xoffset]",
// never nothing, so a stack keeps its depth.
package symbolize

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Frame is one named stack frame.
type Frame struct {
	// Name is the function, or "[module+0xoffset]" when it has none.
	Name string
	// Module is the mapped file's path ("[kernel]" for the kernel, "" for
	// anonymous memory).
	Module string
	// Addr is the address within the module: the virtual address the file
	// was linked at, or the kernel address.
	Addr uint64
	// Kernel says the frame is the kernel's.
	Kernel bool
}

// Symbolizer names addresses. It is safe for concurrent use.
type Symbolizer struct {
	procRoot string // "/proc"

	kernelOnce sync.Once
	kernel     *kernelSyms
	kernelErr  error

	mu      sync.Mutex
	objects map[string]*objectFile // by build id (or file identity)
	ids     map[fileIdentity]string
}

// fileIdentity tells a file apart from others without reading it, so that
// its build id is read once.
type fileIdentity struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

// maxObjects bounds the cache; past it the cache starts again.
const maxObjects = 512

// New returns a symbolizer of this machine's processes.
func New() *Symbolizer { return NewAt("/proc") }

// NewAt returns a symbolizer that reads procfs at root.
func NewAt(root string) *Symbolizer {
	return &Symbolizer{procRoot: root, objects: map[string]*objectFile{}, ids: map[fileIdentity]string{}}
}

// Kernel names a kernel address. ret says addr is a return address (every
// frame but the innermost), which is looked up one byte earlier: a call
// that ends its function returns to the next function's first byte.
func (s *Symbolizer) Kernel(addr uint64, ret bool) Frame {
	s.kernelOnce.Do(func() { s.kernel, s.kernelErr = readKallsyms(filepath.Join(s.procRoot, "kallsyms")) })
	f := Frame{Module: "[kernel]", Addr: addr, Kernel: true}
	if s.kernel != nil {
		if name, ok := s.kernel.lookup(lookupPC(addr, ret)); ok {
			f.Name = name
			return f
		}
	}
	f.Name = fmt.Sprintf("[kernel+0x%x]", addr)
	return f
}

// KernelErr says why kernel frames are not named, once one was asked for.
func (s *Symbolizer) KernelErr() error { return s.kernelErr }

func lookupPC(addr uint64, ret bool) uint64 {
	if ret && addr > 0 {
		return addr - 1
	}
	return addr
}

// Process is one process's address space as it was mapped when it was
// read.
type Process struct {
	s    *Symbolizer
	pid  int
	maps []mapping
	objs map[*mapping]*objectFile // nil value: the file could not be read
}

// Process reads pid's mappings. A process that has exited has none, and
// its frames are named "[unknown+0xaddr]".
func (s *Symbolizer) Process(pid int) *Process {
	p := &Process{s: s, pid: pid, objs: map[*mapping]*objectFile{}}
	f, err := os.Open(filepath.Join(s.procRoot, fmt.Sprint(pid), "maps"))
	if err != nil {
		return p
	}
	defer f.Close()
	p.maps, _ = parseMaps(f)
	return p
}

// Symbolize names a user address of the process (ret as for Kernel).
func (p *Process) Symbolize(addr uint64, ret bool) Frame {
	m := find(p.maps, addr)
	if m == nil {
		return Frame{Name: fmt.Sprintf("[unknown+0x%x]", addr), Addr: addr}
	}
	if m.path == "" || strings.HasPrefix(m.path, "[") {
		// Anonymous memory (JIT code) and the kernel's [vdso].
		mod := strings.Trim(m.path, "[]")
		if mod == "" {
			mod = "anon"
		}
		off := addr - m.start
		return Frame{Name: fmt.Sprintf("[%s+0x%x]", mod, off), Module: m.path, Addr: off}
	}
	fileOff := addr - m.start + m.offset
	f := Frame{Module: m.path, Addr: fileOff}
	obj := p.object(m)
	if obj != nil {
		if va, ok := obj.vaddr(fileOff); ok {
			f.Addr = va
			if name, ok := obj.name(lookupPC(va, ret)); ok {
				f.Name = name
				return f
			}
		}
	}
	f.Name = fmt.Sprintf("[%s+0x%x]", filepath.Base(strings.TrimSuffix(m.path, " (deleted)")), f.Addr)
	return f
}

// object returns the symbols of m's file, reading them on first use.
func (p *Process) object(m *mapping) *objectFile {
	if o, ok := p.objs[m]; ok {
		return o
	}
	o := p.s.open(p.pid, m)
	p.objs[m] = o
	return o
}

// open reads the file mapped at m through the process's own view of it:
// map_files names the mapped file itself (deleted or in another mount
// namespace), and the process's root is the fallback where map_files is
// not readable.
func (s *Symbolizer) open(pid int, m *mapping) *objectFile {
	dir := filepath.Join(s.procRoot, fmt.Sprint(pid))
	f, err := os.Open(filepath.Join(dir, "map_files", fmt.Sprintf("%x-%x", m.start, m.end)))
	if err != nil {
		if f, err = os.Open(filepath.Join(dir, "root", m.path)); err != nil {
			return nil
		}
	}
	defer f.Close()
	var id fileIdentity
	if fi, err := f.Stat(); err == nil {
		id.size, id.mtime = fi.Size(), fi.ModTime().UnixNano()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			id.dev, id.ino = uint64(st.Dev), st.Ino
		}
	}
	s.mu.Lock()
	key, known := s.ids[id]
	o := s.objects[key]
	s.mu.Unlock()
	if known && o != nil {
		return o
	}
	o, err = readObject(f)
	if err != nil {
		return nil
	}
	key = o.buildID
	if key == "" {
		key = fmt.Sprintf("file:%d:%d:%d:%d", id.dev, id.ino, id.size, id.mtime)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.objects) >= maxObjects {
		s.objects, s.ids = map[string]*objectFile{}, map[fileIdentity]string{}
	}
	if cached := s.objects[key]; cached != nil {
		o = cached // the same build at another path
	}
	s.objects[key], s.ids[id] = o, key
	return o
}
