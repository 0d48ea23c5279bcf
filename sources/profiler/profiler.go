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

	mu   sync.Mutex // one drain at a time
	half uint32     // the half the program writes to
	once sync.Once
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

// Drain returns the stacks counted since the last drain, symbolized, and
// clears them. Samples of one process with the same frames are merged.
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
	type entry struct {
		k bpf.ProfileKey
		n uint64
	}
	var entries []entry
	var k bpf.ProfileKey
	var n uint64
	it := counts.Iterate()
	for it.Next(&k, &n) {
		entries = append(entries, entry{k, n})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("profiler: reading counts: %w", err)
	}
	for _, e := range entries {
		if err := counts.Delete(e.k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("profiler: clearing counts: %w", err)
		}
	}
	ips := map[int32][]uint64{}
	readStack := func(id int32) []uint64 {
		if id < 0 {
			return nil // -EFAULT: no such stack; others: lost (lostStack)
		}
		if s, ok := ips[id]; ok {
			return s
		}
		buf := make([]uint64, stacks.ValueSize()/8)
		if err := stacks.Lookup(uint32(id), buf); err != nil {
			ips[id] = nil
			return nil
		}
		end := 0
		for end < len(buf) && buf[end] != 0 {
			end++
		}
		ips[id] = buf[:end]
		return ips[id]
	}

	procs := map[uint32]*symbolize.Process{}
	merged := map[string]*Sample{}
	var out []*Sample
	for _, e := range entries {
		if p.cfg.Keep != nil && !p.cfg.Keep(e.k.Pid) {
			continue
		}
		user, kern := readStack(e.k.UserStack), readStack(e.k.KernelStack)
		proc := procs[e.k.Pid]
		if proc == nil {
			proc = p.sym.Process(int(e.k.Pid))
			procs[e.k.Pid] = proc
		}
		// The stack map holds the innermost frame first.
		frames := make([]symbolize.Frame, 0, len(user)+len(kern))
		if lost(e.k.UserStack) {
			frames = append(frames, symbolize.Frame{Name: lostStack})
		}
		for i := len(user) - 1; i >= 0; i-- {
			frames = append(frames, proc.Symbolize(user[i], i > 0))
		}
		if lost(e.k.KernelStack) {
			frames = append(frames, symbolize.Frame{Name: lostStack, Kernel: true})
		}
		for i := len(kern) - 1; i >= 0; i-- {
			frames = append(frames, p.sym.Kernel(kern[i], i > 0))
		}
		start := e.k.StartNs / procfs.TickNS * procfs.TickNS
		s := &Sample{PID: e.k.Pid, UPID: types.UPID(p.cfg.ASID, e.k.Pid, start), Stack: frames, Count: e.n}
		key := s.UPID.String() + "\x00" + FoldedStack(frames)
		if m := merged[key]; m != nil {
			m.Count += s.Count
			continue
		}
		merged[key] = s
		out = append(out, s)
	}
	if err := clearStacks(stacks); err != nil {
		return nil, err
	}
	res := make([]Sample, len(out))
	for i, s := range out {
		res[i] = *s
	}
	return res, nil
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
