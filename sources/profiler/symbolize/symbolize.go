// Package symbolize names the addresses of sampled stacks: kernel
// addresses from /proc/kallsyms, user addresses through /proc/PID/maps to
// the mapped file and its symbols (Go's pclntab, which stripped Go
// binaries keep, else the ELF symbol tables). An address that cannot be
// named becomes "[module+0xoffset]", never nothing, so a stack keeps its
// depth.
//
// Files are mapped, not copied, and read once: a file is known by device,
// inode, size and mtime, and a build seen at another path by its build
// id; a file that is not ELF is remembered as such. Reading a new file's
// symbol tables can be bounded per drain (SetReadBudget): frames of a
// file not read yet are pending, named [module+0xoffset] until Resolve
// names them in a later drain.
package symbolize

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

	obj *object // the file whose tables are not read yet, if pending
	pc  uint64  // the address to look up in obj
}

// Pending says the frame's file was not read yet (the read budget was
// spent): Resolve names it later.
func (f Frame) Pending() bool { return f.obj != nil }

// Symbolizer names addresses. It is safe for concurrent use.
type Symbolizer struct {
	procRoot string

	kernelOnce sync.Once
	kernel     *kernelSyms
	kernelErr  error

	mu     sync.Mutex
	files  map[fileKey]*object // by file identity; failed ones too
	builds map[string]*object  // by build id
	procs  map[int]*Process    // the last mappings read of each process
	gen    uint64              // Refill calls: the drain
	budget int64               // bytes per drain; <= 0: unbounded
	credit int64
	stats  Stats
}

// Stats count the symbolizer's work since it was made.
type Stats struct {
	Opened       uint64 // files mapped and identified
	Indexed      uint64 // files whose tables were read
	IndexedBytes uint64 // their cost: symbol tables read plus a fixed cost per file
	Deferred     uint64 // frames left pending for lack of budget
	Failed       uint64 // files that are not ELF or fault
	Evicted      uint64 // files dropped from the cache, unused
}

// fileKey tells a file apart from others without reading it.
type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

const (
	// idleDrains is how many drains a file or process stays cached
	// unused (about two minutes at the profiler's 2 s); a pending file
	// stays four times as long.
	idleDrains = 64
	// maxObjects bounds the files cached: past it, those used least
	// recently are dropped.
	maxObjects = 512
)

// New returns a symbolizer of this machine's processes.
func New() *Symbolizer { return NewAt("/proc") }

// NewAt returns a symbolizer that reads procfs at root.
func NewAt(root string) *Symbolizer {
	return &Symbolizer{procRoot: root, files: map[fileKey]*object{}, builds: map[string]*object{}, procs: map[int]*Process{}}
}

// SetReadBudget bounds what reading new files costs per drain: n bytes of
// symbol tables (and a fixed cost per file), refilled by each Refill and
// carried over up to n. A file is read whenever the budget is positive,
// so a file larger than n is read too, and the debt paid by later drains.
// n <= 0 reads every file when first seen (the default).
func (s *Symbolizer) SetReadBudget(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.budget, s.credit = n, n
}

// Refill starts a drain: it adds a drain's read budget and drops the
// files and processes not used for a while. Frames and Processes of
// earlier drains stay valid, but a pending frame whose file was dropped
// keeps its [module+0xoffset] name.
func (s *Symbolizer) Refill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if s.budget > 0 {
		s.credit = min(s.credit+s.budget, s.budget)
	}
	s.evict()
}

// Stats returns the symbolizer's counters.
func (s *Symbolizer) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// evict drops the files and processes not used for idleDrains, and the
// least recently used files past maxObjects.
func (s *Symbolizer) evict() {
	idle := func(o *object) bool {
		limit := uint64(idleDrains)
		if o.state == identified {
			limit *= 4
		}
		return s.gen-o.used > limit
	}
	live := map[*object]bool{}
	for _, o := range s.files {
		if o.state != closed && !idle(o) {
			live[o] = true
		}
	}
	if len(live) > maxObjects {
		byUse := make([]*object, 0, len(live))
		for o := range live {
			byUse = append(byUse, o)
		}
		slices.SortFunc(byUse, func(a, b *object) int { return cmp.Compare(a.used, b.used) })
		for _, o := range byUse[:len(byUse)-maxObjects*3/4] {
			delete(live, o)
		}
	}
	for k, o := range s.files {
		if !live[o] {
			if o.state != closed {
				s.stats.Evicted++
			}
			o.unmap()
			o.state = closed
			delete(s.files, k)
		}
	}
	for id, o := range s.builds {
		if !live[o] {
			delete(s.builds, id)
		}
	}
	for pid, p := range s.procs {
		if s.gen-p.used > idleDrains {
			delete(s.procs, pid)
		}
	}
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
	s     *Symbolizer
	pid   int
	start uint64
	maps  []mapping
	objs  []*object // by mapping: its file, once tried (nil: cannot be opened)
	tried []bool
	used  uint64
}

// Process reads the mappings of pid, whose start time (or any value that
// changes when the pid is reused) is start. The files of mappings that
// are as they were when the same process was last read are not opened
// again. A process that has exited has no mappings, and its frames are
// named "[unknown+0xaddr]".
func (s *Symbolizer) Process(pid int, start uint64) *Process {
	p := &Process{s: s, pid: pid, start: start}
	if f, err := os.Open(filepath.Join(s.procRoot, fmt.Sprint(pid), "maps")); err == nil {
		p.maps, _ = parseMaps(f)
		f.Close()
	}
	p.objs, p.tried = make([]*object, len(p.maps)), make([]bool, len(p.maps))
	s.mu.Lock()
	defer s.mu.Unlock()
	p.used = s.gen
	if old := s.procs[pid]; old != nil && old.start == start {
		// Both lists are sorted by address.
		j := 0
		for i := range p.maps {
			for j < len(old.maps) && old.maps[j].start < p.maps[i].start {
				j++
			}
			if j < len(old.maps) && old.maps[j] == p.maps[i] {
				p.objs[i], p.tried[i] = old.objs[j], old.tried[j]
			}
		}
	}
	if len(p.maps) > 0 {
		s.procs[pid] = p
	}
	return p
}

// Symbolize names a user address of the process (ret as for Kernel).
func (p *Process) Symbolize(addr uint64, ret bool) Frame {
	i := find(p.maps, addr)
	if i < 0 {
		return Frame{Name: fmt.Sprintf("[unknown+0x%x]", addr), Addr: addr}
	}
	m := &p.maps[i]
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
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := p.object(i); o != nil {
		o.used = s.gen
		if va, ok := o.vaddr(fileOff); ok {
			f.Addr = va
			pc := lookupPC(va, ret)
			if o.state == identified && !s.read(o) {
				s.stats.Deferred++
				f.obj, f.pc = o, pc
			} else if o.state == ready {
				name, ok := o.name(pc)
				if ok {
					f.Name = name
					return f
				}
				if o.state == failed {
					s.stats.Failed++ // it faulted
				}
			}
		}
	}
	f.Name = unnamed(m.path, f.Addr)
	return f
}

func unnamed(path string, addr uint64) string {
	return fmt.Sprintf("[%s+0x%x]", filepath.Base(strings.TrimSuffix(path, " (deleted)")), addr)
}

// Resolve names the pending frames whose files the budget lets it read,
// and says whether none is left pending. A frame whose file cannot be
// read keeps its [module+0xoffset] name, which is then final.
func (s *Symbolizer) Resolve(frames []Frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := true
	for i := range frames {
		f := &frames[i]
		o := f.obj
		if o == nil {
			continue
		}
		if o.state == identified && !s.read(o) {
			done = false
			continue
		}
		f.obj = nil
		o.used = s.gen
		if o.state == ready {
			if name, ok := o.name(f.pc); ok {
				f.Name = name
			} else if o.state == failed {
				s.stats.Failed++
			}
		}
	}
	return done
}

// read indexes an identified file if the budget allows.
func (s *Symbolizer) read(o *object) bool {
	if s.budget > 0 {
		if s.credit <= 0 {
			return false
		}
		s.credit -= o.cost
	}
	s.stats.Indexed++
	s.stats.IndexedBytes += uint64(o.cost)
	if err := o.index(); err != nil {
		s.stats.Failed++
		o.fail()
	}
	return true
}

// object returns the file of mapping i, opening it on first use.
func (p *Process) object(i int) *object {
	if p.tried[i] && (p.objs[i] == nil || p.objs[i].state != closed) {
		return p.objs[i]
	}
	p.objs[i], p.tried[i] = p.s.open(p.pid, &p.maps[i]), true
	return p.objs[i]
}

// open finds the file mapped at m in the cache, or maps and identifies
// it, through the process's own view of it: map_files names the mapped
// file itself (deleted or in another mount namespace), and the process's
// root is the fallback where map_files is not readable. It returns nil
// when the file cannot be opened.
func (s *Symbolizer) open(pid int, m *mapping) *object {
	dir := filepath.Join(s.procRoot, fmt.Sprint(pid))
	f, err := os.Open(filepath.Join(dir, "map_files", fmt.Sprintf("%x-%x", m.start, m.end)))
	if err != nil {
		if f, err = os.Open(filepath.Join(dir, "root", m.path)); err != nil {
			return nil
		}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	key := fileKey{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key.dev, key.ino = uint64(st.Dev), st.Ino
	}
	if o := s.files[key]; o != nil && o.state != closed {
		return o
	}
	var o *object
	if fi.Mode().IsRegular() {
		o, err = identify(f, key)
	} else {
		err = errNotELF
	}
	if err != nil {
		// Remembered, so that it is not tried again.
		s.stats.Failed++
		o = &object{key: key, state: failed, used: s.gen}
		s.files[key] = o
		return o
	}
	s.stats.Opened++
	o.used = s.gen
	if o.buildID != "" {
		if b := s.builds[o.buildID]; b != nil && b.state != closed && b.state != failed {
			o.unmap() // the same build at another path or inode
			s.files[key] = b
			return b
		}
		s.builds[o.buildID] = o
	}
	s.files[key] = o
	if s.budget <= 0 {
		s.read(o)
	}
	return o
}
