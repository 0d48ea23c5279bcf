package ebpf

import (
	"errors"
	"fmt"
	"os"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
)

// hook is a program and where it attaches: a tracepoint (group/name), or
// with btf the BTF raw tracepoint named in its program (tp_btf/name).
type hook struct {
	prog        *cebpf.Program
	group, name string
	btf         bool
}

// tracepoints lists the tracer's hooks.
func tracepoints(p *bpf.TracePrograms) []hook {
	return []hook{
		{p.SysExit, "raw_syscalls", "sys_exit", true},
		{p.ProcessExit, "sched", "sched_process_exit", false},
	}
}

func (h hook) attach() (link.Link, error) {
	if h.btf {
		return link.AttachTracing(link.TracingOptions{Program: h.prog})
	}
	return link.Tracepoint(h.group, h.name, h.prog, nil)
}

// load loads the BPF programs, configures and attaches them.
func (t *Tracer) load() error {
	if err := ensureTracefs(); err != nil {
		return fmt.Errorf("ebpf: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("ebpf: raise memlock rlimit (needs root or CAP_SYS_RESOURCE): %w", err)
	}
	spec, err := bpf.LoadTrace()
	if err != nil {
		return fmt.Errorf("ebpf: load BPF spec: %w", err)
	}
	spec.Maps[bpf.TraceMapEvents].MaxEntries = t.cfg.RingBufferBytes
	ncpu, err := cebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("ebpf: count CPUs: %w", err)
	}
	spec.Maps[bpf.TraceMapScratchBuf].MaxEntries = uint32(ncpu)
	if err := spec.LoadAndAssign(&t.objs, nil); err != nil {
		var ve *cebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("ebpf: BPF verifier rejected the programs: %+v", ve)
		}
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("ebpf: loading BPF programs needs root or CAP_BPF+CAP_PERFMON: %w", err)
		}
		return fmt.Errorf("ebpf: load BPF programs: %w", err)
	}
	if err := t.configure(); err != nil {
		t.objs.Close()
		return err
	}
	if err := t.attach(); err != nil {
		t.closeBPF()
		return err
	}
	return nil
}

// configure writes the pid filters into the BPF maps.
func (t *Tracer) configure() error {
	c := bpf.TraceConfig{}
	if !t.cfg.TraceSelf {
		c.SelfTgid = uint32(os.Getpid())
	}
	if len(t.cfg.OnlyPIDs) > 0 {
		c.OnlyPids = 1
	}
	if len(t.cfg.SkipPIDs) > 0 {
		c.SkipPids = 1
	}
	if err := t.objs.ConfigMap.Put(uint32(0), c); err != nil {
		return fmt.Errorf("ebpf: write config map: %w", err)
	}
	one := uint8(1)
	for _, pid := range t.cfg.SkipPIDs {
		if err := t.objs.SkipPids.Put(pid, one); err != nil {
			return fmt.Errorf("ebpf: skip pid %d: %w", pid, err)
		}
	}
	for _, pid := range t.cfg.OnlyPIDs {
		if err := t.objs.AllowPids.Put(pid, one); err != nil {
			return fmt.Errorf("ebpf: allow pid %d: %w", pid, err)
		}
	}
	return nil
}

// attach attaches every hook and records each one's state for
// probe_status. It fails only if none attached.
func (t *Tracer) attach() error {
	hooks := tracepoints(&t.objs.TracePrograms)
	probes := make([]probeState, 0, len(hooks))
	for _, tp := range hooks {
		l, err := tp.attach()
		probes = append(probes, probeState{name: tp.group + ":" + tp.name, err: err})
		if err == nil {
			t.links = append(t.links, l)
		}
	}
	t.mu.Lock()
	t.probes = probes
	t.mu.Unlock()
	if len(t.links) == 0 {
		return fmt.Errorf("ebpf: no tracepoint attached: %w", probes[0].err)
	}
	return nil
}

func (t *Tracer) detach() {
	for _, l := range t.links {
		l.Close()
	}
	t.links = nil
}

func (t *Tracer) closeBPF() {
	t.linkMu.Lock()
	t.detach()
	t.closed = true
	t.linkMu.Unlock()
	if t.reader != nil {
		t.reader.ring.close()
	}
	t.objs.Close()
}

// deleteConns deletes the BPF side's entries of connections that ended
// without a close syscall (their process exited).
func (t *Tracer) deleteConns(keys []conntrack.Key) {
	for _, k := range keys {
		key := uint64(k.TGID)<<32 | uint64(uint32(k.FD))
		if err := t.objs.Conns.Delete(key); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
			t.counters["bpf_conn_delete_errors"]++
		}
	}
}

// forgetConns empties the BPF side's connection map (Pause).
func (t *Tracer) forgetConns() {
	var keys []uint64
	var prev any // nil: the first key
	for {
		var k uint64
		if err := t.objs.Conns.NextKey(prev, &k); err != nil {
			break
		}
		keys = append(keys, k)
		prev = k
	}
	for _, k := range keys {
		if err := t.objs.Conns.Delete(k); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
			t.counters["bpf_conn_delete_errors"]++
		}
	}
}

// ProgramStats is the in-kernel cost of the tracer's BPF programs: their
// summed run time and runs since they were loaded. The kernel counts them
// only while statistics are enabled (cilium/ebpf's EnableStats with
// BPF_STATS_RUN_TIME, or sysctl kernel.bpf_stats_enabled=1); it excludes
// the tracepoint machinery that calls the programs.
func (t *Tracer) ProgramStats() (runtime time.Duration, runs uint64) {
	for _, h := range tracepoints(&t.objs.TracePrograms) {
		if h.prog == nil {
			continue
		}
		s, err := h.prog.Stats()
		if err != nil {
			continue
		}
		runtime += s.Runtime
		runs += s.RunCount
	}
	return runtime, runs
}
