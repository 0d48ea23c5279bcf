// Package profiler is pxq's continuous CPU profiler: a BPF program on a
// software CPU-clock perf event on every CPU (100 Hz by default) counts
// the user and kernel stacks that processes are in, and a drain every
// period (30 s by default, as Pixie) turns the counts into symbolized
// stacks and the rows of stack_traces.beta.
//
// Stacks are unwound by the kernel through frame pointers: Go code and C
// built with -fno-omit-frame-pointer unwind fully; see docs/sources.md
// for the runtimes that need more.
package profiler

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/sources/profiler/bpf"
	"github.com/pxq-dev/pxq/sources/profiler/symbolize"
	"github.com/pxq-dev/pxq/types"
)

// Config configures a Profiler.
type Config struct {
	// ASID is the agent short id that goes into UPIDs.
	ASID uint32
	// Frequency is the sampling rate per CPU, in Hz (default 100).
	Frequency int
	// StackEntries is how many distinct stacks one period can hold
	// (default 8192); stacks past it are counted as lost.
	StackEntries int
	// Keep, when set, chooses the processes Drain returns; the others'
	// samples are discarded unread (the program samples every process).
	Keep func(pid uint32) bool
	// ReadBudget bounds what each drain spends reading files it has not
	// seen before, in bytes of symbol tables (symbolize.SetReadBudget):
	// samples in files left for later are held until a later drain names
	// them. 0 or less: every file is read when first seen.
	ReadBudget int64
}

// Sample is one stack of one process and how often it was sampled.
type Sample struct {
	PID   uint32
	UPID  types.UInt128Value
	Stack []symbolize.Frame // root first; user frames, then kernel frames
	Count uint64
}

// Stats are the program's counters since it started.
type Stats struct {
	Samples   uint64 // samples counted
	StackLost uint64 // samples whose user or kernel stack was not stored
	KeyLost   uint64 // samples dropped because the counts map was full
}

// Profiler samples every CPU. Drain reads and clears what it counted.
type Profiler struct {
	cfg   Config
	objs  bpf.ProfileObjects
	links []link.Link
	fds   []int
	sym   *symbolize.Symbolizer

	mu          sync.Mutex // one drain at a time
	half        uint32     // the half the program writes to
	held        []*Sample  // samples whose files are not read yet
	noBatch     bool       // the kernel has no batch ops on hash maps
	keys        []bpf.ProfileKey
	vals        []uint64
	stackDelete int8 // lookup-and-delete on stack maps: 0 untried, 1 works, -1 does not
	once        sync.Once
}

// New loads the program and starts sampling every online CPU.
func New(cfg Config) (*Profiler, error) {
	if cfg.Frequency <= 0 {
		cfg.Frequency = 100
	}
	if cfg.StackEntries <= 0 {
		cfg.StackEntries = 8192
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("profiler: %w", err)
	}
	spec, err := bpf.LoadProfile()
	if err != nil {
		return nil, fmt.Errorf("profiler: %w", err)
	}
	for _, name := range []string{bpf.ProfileMapStacks0, bpf.ProfileMapStacks1} {
		spec.Maps[name].MaxEntries = uint32(cfg.StackEntries)
	}
	for _, name := range []string{bpf.ProfileMapCounts0, bpf.ProfileMapCounts1} {
		spec.Maps[name].MaxEntries = uint32(2 * cfg.StackEntries)
	}
	p := &Profiler{cfg: cfg, sym: symbolize.New()}
	p.sym.SetReadBudget(cfg.ReadBudget)
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("profiler: loading the BPF program: %w", err)
	}
	cpus, err := onlineCPUs()
	if err != nil {
		p.Close()
		return nil, err
	}
	for _, cpu := range cpus {
		if err := p.attach(cpu); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// attach opens cpu's clock event and runs the program on its ticks.
func (p *Profiler) attach(cpu int) error {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: uint64(p.cfg.Frequency),
		Bits:   unix.PerfBitFreq,
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("profiler: perf_event_open on CPU %d: %w", cpu, err)
	}
	p.fds = append(p.fds, fd)
	l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: p.objs.Sample, Attach: ebpf.AttachPerfEvent})
	if err == nil {
		p.links = append(p.links, l)
		return nil
	}
	// Kernels before 5.15 have no perf-event links: the ioctl.
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, p.objs.Sample.FD()); err != nil {
		return fmt.Errorf("profiler: attaching to CPU %d: %w", cpu, err)
	}
	return nil
}

// onlineCPUs reads /sys/devices/system/cpu/online ("0-3,5").
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("profiler: %w", err)
	}
	var cpus []int
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("profiler: online CPUs %q: %w", b, err)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("profiler: online CPUs %q: %w", b, err)
			}
		}
		for c := a; c <= z; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// Frequency returns the sampling rate per CPU, in Hz.
func (p *Profiler) Frequency() int { return p.cfg.Frequency }

// Symbolizer returns the profiler's symbolizer.
func (p *Profiler) Symbolizer() *symbolize.Symbolizer { return p.sym }

// settle is how long a drain waits after switching halves for programs
// that read the old half to finish (they run for microseconds).
const settle = 5 * time.Millisecond

// maxHeld bounds the samples held for files not read yet; past it, new
// ones are returned with their frames unnamed.
const maxHeld = 1 << 14

// batchSize is how many counts one batch syscall reads.
const batchSize = 1024

type countEntry struct {
	k bpf.ProfileKey
	n uint64
}

// Drain returns the stacks counted since the last drain, symbolized, and
// clears them. Samples of one process with the same frames are merged.
//
// With a read budget (Config.ReadBudget), a sample with frames in a file
// the budget did not let it read yet is held, and returned by the first
// drain that names it: a stack is returned under one name only, as
// stack_traces.beta needs for its ids.
func (p *Profiler) Drain() ([]Sample, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.half
	next := old ^ 1
	if err := p.objs.Cfg.Put(uint32(0), next); err != nil {
		return nil, fmt.Errorf("profiler: switching halves: %w", err)
	}
	p.half = next
	time.Sleep(settle)
	counts, stacks := p.objs.Counts0, p.objs.Stacks0
	if old == 1 {
		counts, stacks = p.objs.Counts1, p.objs.Stacks1
	}
	entries, err := p.readCounts(counts)
	if err != nil {
		return nil, err
	}
	p.sym.Refill()

	out := []*Sample{}
	merged := map[stackKey]*Sample{}
	add := func(s *Sample) {
		key := stackKey{s.UPID, FoldedStack(s.Stack)}
		if m := merged[key]; m != nil {
			m.Count += s.Count
			return
		}
		merged[key] = s
		out = append(out, s)
	}
	// Samples held by earlier drains first: this drain's budget goes to
	// the files they wait for.
	held := p.held[:0]
	for _, s := range p.held {
		if p.sym.Resolve(s.Stack) {
			add(s)
		} else {
			held = append(held, s)
		}
	}
	heldAt := map[stackKey]*Sample{}
	for _, s := range held {
		heldAt[stackKey{s.UPID, FoldedStack(s.Stack)}] = s
	}

	sr := stackReader{m: stacks, del: &p.stackDelete, ips: map[int32][]uint64{}}
	type userKey struct {
		pid uint32
		id  int32
	}
	users := map[userKey][]symbolize.Frame{}
	kernels := map[int32][]symbolize.Frame{}
	procs := map[uint32]*symbolize.Process{}
	for _, e := range entries {
		if p.cfg.Keep != nil && !p.cfg.Keep(e.k.Pid) {
			sr.drop(e.k.UserStack)
			sr.drop(e.k.KernelStack)
			continue
		}
		uk := userKey{e.k.Pid, e.k.UserStack}
		user, ok := users[uk]
		if !ok {
			ips := sr.read(e.k.UserStack)
			proc := procs[e.k.Pid]
			if proc == nil {
				proc = p.sym.Process(int(e.k.Pid), e.k.StartNs)
				procs[e.k.Pid] = proc
			}
			// The stack map holds the innermost frame first.
			if lost(e.k.UserStack) {
				user = append(user, symbolize.Frame{Name: lostStack})
			}
			for i := len(ips) - 1; i >= 0; i-- {
				user = append(user, proc.Symbolize(ips[i], i > 0))
			}
			users[uk] = user
		}
		kern, ok := kernels[e.k.KernelStack]
		if !ok {
			ips := sr.read(e.k.KernelStack)
			if lost(e.k.KernelStack) {
				kern = append(kern, symbolize.Frame{Name: lostStack, Kernel: true})
			}
			for i := len(ips) - 1; i >= 0; i-- {
				kern = append(kern, p.sym.Kernel(ips[i], i > 0))
			}
			kernels[e.k.KernelStack] = kern
		}
		frames := make([]symbolize.Frame, 0, len(user)+len(kern))
		frames = append(append(frames, user...), kern...)
		start := e.k.StartNs / procfs.TickNS * procfs.TickNS
		s := &Sample{PID: e.k.Pid, UPID: types.UPID(p.cfg.ASID, e.k.Pid, start), Stack: frames, Count: e.n}
		if pending(frames) {
			key := stackKey{s.UPID, FoldedStack(frames)}
			if h := heldAt[key]; h != nil {
				h.Count += s.Count
				continue
			}
			if len(held) < maxHeld {
				heldAt[key] = s
				held = append(held, s)
				continue
			}
			p.sym.Resolve(frames) // what the budget names, the rest unnamed
		}
		add(s)
	}
	p.held = held
	if err := sr.clear(); err != nil {
		return nil, err
	}
	res := make([]Sample, len(out))
	for i, s := range out {
		res[i] = *s
	}
	return res, nil
}

// Held returns how many samples wait for their files to be read.
func (p *Profiler) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

func pending(frames []symbolize.Frame) bool {
	for _, f := range frames {
		if f.Pending() {
			return true
		}
	}
	return false
}

// readCounts reads and clears a half's counts, in batches where the
// kernel has them (5.6), else one by one.
func (p *Profiler) readCounts(counts *ebpf.Map) ([]countEntry, error) {
	var entries []countEntry
	if !p.noBatch {
		if p.keys == nil {
			p.keys, p.vals = make([]bpf.ProfileKey, batchSize), make([]uint64, batchSize)
		}
		var cursor ebpf.MapBatchCursor
		for {
			n, err := counts.BatchLookupAndDelete(&cursor, p.keys, p.vals, nil)
			for i := 0; i < n; i++ {
				entries = append(entries, countEntry{p.keys[i], p.vals[i]})
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return entries, nil
			}
			if err == nil {
				continue
			}
			if len(entries) > 0 || !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, unix.EINVAL) {
				return nil, fmt.Errorf("profiler: reading counts: %w", err)
			}
			p.noBatch = true
			break
		}
	}
	var k bpf.ProfileKey
	var n uint64
	it := counts.Iterate()
	for it.Next(&k, &n) {
		entries = append(entries, countEntry{k, n})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("profiler: reading counts: %w", err)
	}
	for _, e := range entries {
		if err := counts.Delete(e.k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("profiler: clearing counts: %w", err)
		}
	}
	return entries, nil
}

// stackReader reads the stacks of a half, deleting each as it reads it
// where the kernel can (lookup-and-delete on a stack map; 6.18 here), so
// that clearing the half afterwards finds only the stacks no count
// referred to.
type stackReader struct {
	m   *ebpf.Map
	del *int8 // 0: not tried yet, 1: lookup-and-delete works, -1: it does not
	ips map[int32][]uint64
	buf []uint64
	// left holds ids read but not deleted, and those dropped unread.
	left []uint32
}

func (r *stackReader) read(id int32) []uint64 {
	if id < 0 {
		return nil // -EFAULT: no such stack; others: lost (lostStack)
	}
	if s, ok := r.ips[id]; ok {
		return s
	}
	buf := make([]uint64, r.m.ValueSize()/8)
	var err error
	if *r.del >= 0 {
		err = r.m.LookupAndDelete(uint32(id), buf)
		if *r.del == 0 && err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			*r.del = -1
		} else if err == nil {
			*r.del = 1
		}
	}
	if *r.del < 0 {
		err = r.m.Lookup(uint32(id), buf)
		r.left = append(r.left, uint32(id))
	}
	if err != nil {
		r.ips[id] = nil
		return nil
	}
	end := 0
	for end < len(buf) && buf[end] != 0 {
		end++
	}
	r.ips[id] = buf[:end]
	return r.ips[id]
}

// drop marks a stack of a sample not kept, to be deleted unread.
func (r *stackReader) drop(id int32) {
	if id >= 0 {
		if _, ok := r.ips[id]; !ok {
			r.ips[id] = nil
			r.left = append(r.left, uint32(id))
		}
	}
}

// clear deletes the stacks left, then any other stack of the half: those
// of samples whose count was lost.
func (r *stackReader) clear() error {
	for _, id := range r.left {
		if err := r.m.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("profiler: clearing stacks: %w", err)
		}
	}
	return clearStacks(r.m)
}

// lostStack names a stack the program could not store: its stack map
// was full, or another stack had its hash bucket.
const lostStack = "[stack lost]"

// lost says a stack id is an error other than "no such stack" (-EFAULT).
func lost(id int32) bool { return id < 0 && id != -int32(unix.EFAULT) }

// clearStacks deletes every stack of a half, those of lost samples too.
func clearStacks(m *ebpf.Map) error {
	var ids []uint32
	var id, next uint32
	for {
		var err error
		if len(ids) == 0 {
			err = m.NextKey(nil, &next)
		} else {
			err = m.NextKey(id, &next)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("profiler: listing stacks: %w", err)
		}
		ids = append(ids, next)
		id = next
	}
	for _, id := range ids {
		if err := m.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("profiler: clearing stacks: %w", err)
		}
	}
	return nil
}

// FoldedStack joins frames as stack_trace holds them: root first,
// separated by ';', kernel frames marked "[k] ".
func FoldedStack(frames []symbolize.Frame) string {
	var b strings.Builder
	for i, f := range frames {
		if i > 0 {
			b.WriteByte(';')
		}
		if f.Kernel {
			b.WriteString("[k] ")
		}
		b.WriteString(f.Name)
	}
	return b.String()
}

// Stats sums the program's per-CPU counters.
func (p *Profiler) Stats() (Stats, error) {
	var st Stats
	for i, dst := range []*uint64{&st.Samples, &st.StackLost, &st.KeyLost} {
		var per []uint64
		if err := p.objs.Counters.Lookup(uint32(i), &per); err != nil {
			return st, fmt.Errorf("profiler: counters: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return st, nil
}

// Close stops sampling and frees the program and its maps.
func (p *Profiler) Close() error {
	p.once.Do(func() {
		for _, l := range p.links {
			l.Close()
		}
		for _, fd := range p.fds {
			unix.Close(fd)
		}
		p.objs.Close()
	})
	return nil
}
