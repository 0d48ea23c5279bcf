package ebpf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/sources/ebpf/bpf"
	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
	"github.com/pxq-dev/pxq/sources/ebpf/tls"
)

// hook is a program and where it attaches: a tracepoint (group/name), or
// with btf the BTF raw tracepoint named in its program (tp_btf/name).
type hook struct {
	prog        *cebpf.Program
	group, name string
	btf         bool
}

// tracepoints lists the tracer's tracepoint hooks; the TLS uprobes are
// the tls.Prober's.
func (t *Tracer) tracepoints() []hook {
	p := &t.objs.TracePrograms
	h := []hook{
		{p.SysExit, "raw_syscalls", "sys_exit", true},
		{p.ProcessExit, "sched", "sched_process_exit", false},
	}
	if !t.cfg.DisableTLS {
		h = append(h, hook{p.ProcessExec, "sched", "sched_process_exec", true})
	}
	return h
}

// tlsPrograms are the programs of the TLS uprobes.
func (t *Tracer) tlsPrograms() tls.Programs {
	p := &t.objs.TracePrograms
	var multi, multiRet *cebpf.Program
	if t.uprobeMulti {
		multi, multiRet = p.SslEnterMulti, p.SslReturnMulti
	}
	return tls.Programs{
		Multi:       multi,
		MultiReturn: multiRet,
		Entry: map[string]*cebpf.Program{
			tls.FuncWrite:     p.SslWrite,
			tls.FuncWriteEx:   p.SslWriteEx,
			tls.FuncRead:      p.SslRead,
			tls.FuncReadEx:    p.SslReadEx,
			tls.FuncHandshake: p.SslHandshake,
		},
		Return: p.SslReturn,
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
	if !t.cfg.DisableTLS {
		if err := spec.Variables[bpf.TraceVarTlsEnabled].Set(uint32(1)); err != nil {
			return fmt.Errorf("ebpf: enable TLS: %w", err)
		}
	}
	if !t.cfg.CopyWholeBodies {
		if err := spec.Variables[bpf.TraceVarBodyLimit].Set(uint32(t.cfg.MaxBodyBytes)); err != nil {
			return fmt.Errorf("ebpf: set body limit: %w", err)
		}
	}
	t.uprobeMulti = haveUprobeMulti()
	if !t.uprobeMulti {
		// The kernel would refuse them: load stand-ins, never attached.
		for _, name := range []string{bpf.TraceProgSslEnterMulti, bpf.TraceProgSslReturnMulti} {
			ps := spec.Programs[name]
			ps.AttachType = cebpf.AttachNone
			ps.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
		}
	}
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
	if !t.cfg.DisableTLS {
		if err := t.startTLS(); err != nil {
			t.closeBPF()
			return err
		}
	}
	return nil
}

// haveUprobeMulti reports whether the kernel loads uprobe_multi programs
// (Linux 6.6).
func haveUprobeMulti() bool {
	p, err := cebpf.NewProgram(&cebpf.ProgramSpec{
		Type:         cebpf.Kprobe,
		AttachType:   cebpf.AttachTraceUprobeMulti,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return false
	}
	p.Close()
	return true
}

// startTLS attaches the TLS uprobes to the files that need them: the
// host's libssl (unless only some processes are traced: a uprobe on a
// library costs every process that calls it a trap), the files of the
// processes running now, and from then on those of each process that
// executes or maps a file not seen before.
func (t *Tracer) startTLS() error {
	progs := t.tlsPrograms()
	if t.cfg.DisableGoTLS {
		progs.GoErr = tls.ErrGoDisabled
	} else if t.goTLS, progs.GoErr = t.loadGoTLS(); t.goTLS != nil {
		progs.GoEnter, progs.GoReturn = t.goTLS.Enter, t.goTLS.Return
		if t.uprobeMulti {
			progs.GoEnterMulti, progs.GoReturnMulti = t.goTLS.EnterMulti, t.goTLS.ReturnMulti
		}
	}
	t.tls = tls.New(tls.Config{Programs: progs, MaxFiles: t.cfg.MaxTLSFiles})
	w, err := t.tls.Watch(t.objs.FileEvents, t.objs.FilesSeen)
	if err != nil {
		return fmt.Errorf("ebpf: read exec events: %w", err)
	}
	t.tlsWatch = w
	// The running processes are examined in the background: setting
	// uprobes takes the kernel milliseconds each (a Go binary has 18),
	// so on a host of many programs the scan takes seconds, and the
	// tracer (and the agent's listener) must not wait for it. Processes
	// that start meanwhile are the exec watcher's.
	t.tlsScanDone = make(chan struct{})
	go func() {
		defer close(t.tlsScanDone)
		start := time.Now()
		if len(t.cfg.OnlyPIDs) == 0 {
			t.tls.HostLibraries()
		}
		t.tls.Running(t.tracedPID)
		t.tlsScanNS.Store(int64(time.Since(start)))
	}()
	return nil
}

// WaitTLSScan waits until the processes that ran when the tracer was
// made have been examined for TLS libraries and Go's crypto/tls (and
// their probes set), or ctx ends.
func (t *Tracer) WaitTLSScan(ctx context.Context) error {
	if t.tlsScanDone == nil {
		return nil
	}
	select {
	case <-t.tlsScanDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tracedPID is the BPF side's process filter.
func (t *Tracer) tracedPID(pid uint32) bool {
	if !t.cfg.TraceSelf && pid == uint32(os.Getpid()) {
		return false
	}
	if len(t.cfg.OnlyPIDs) > 0 {
		return slices.Contains(t.cfg.OnlyPIDs, pid)
	}
	return !slices.Contains(t.cfg.SkipPIDs, pid)
}

// TracePID adds a process to those traced by a tracer made with
// OnlyPIDs: one started after New (the bench's load generator is one per
// round). Its connections opened before the call are picked up as those
// that predate the tracer are. It fails without OnlyPIDs, where every
// process is traced already, and past 1024 processes.
func (t *Tracer) TracePID(pid uint32) error {
	if len(t.cfg.OnlyPIDs) == 0 {
		return errors.New("ebpf: TracePID needs OnlyPIDs")
	}
	if err := t.objs.AllowPids.Put(pid, uint8(1)); err != nil {
		return fmt.Errorf("ebpf: trace pid %d: %w", pid, err)
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
	hooks := t.tracepoints()
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
	if t.tlsWatch != nil {
		t.tlsWatch.Close()
	}
	if t.tls != nil {
		t.tls.Close() // ends a scan still running at its next process
		if t.tlsScanDone != nil {
			<-t.tlsScanDone
		}
	}
	if t.goTLS != nil {
		t.goTLS.Close()
	}
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

// forgetConns empties the BPF side's connection map (Pause), and its
// SSL calls in progress: their returns, whose probes are detached, will
// not end them.
func (t *Tracer) forgetConns() {
	t.clearMap(t.objs.Conns)
	t.clearMap(t.objs.SslCalls)
	if err := t.objs.SslCallsActive.Set(uint64(0)); err != nil {
		t.counters["bpf_conn_delete_errors"]++
	}
}

// clearMap deletes every entry of a map of uint64 keys.
func (t *Tracer) clearMap(m *cebpf.Map) {
	var keys []uint64
	var prev any // nil: the first key
	for {
		var k uint64
		if err := m.NextKey(prev, &k); err != nil {
			break
		}
		keys = append(keys, k)
		prev = k
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
			t.counters["bpf_conn_delete_errors"]++
		}
	}
}

// ProgramStats is the in-kernel cost of the tracer's BPF programs (the
// TLS uprobes' included): their summed run time and runs since they were
// loaded. The kernel counts them only while statistics are enabled
// (cilium/ebpf's EnableStats with BPF_STATS_RUN_TIME, or sysctl
// kernel.bpf_stats_enabled=1); it excludes the tracepoint and uprobe
// machinery that calls the programs.
func (t *Tracer) ProgramStats() (runtime time.Duration, runs uint64) {
	progs := []*cebpf.Program{}
	for _, h := range t.tracepoints() {
		progs = append(progs, h.prog)
	}
	if !t.cfg.DisableTLS {
		tp := t.tlsPrograms()
		for _, fn := range tls.Funcs {
			progs = append(progs, tp.Entry[fn])
		}
		progs = append(progs, tp.Return, tp.Multi, tp.MultiReturn)
		if t.goTLS != nil {
			progs = append(progs, t.goTLS.Enter, t.goTLS.Return)
		}
	}
	for _, prog := range progs {
		if prog == nil {
			continue
		}
		s, err := prog.Stats()
		if err != nil {
			continue
		}
		runtime += s.Runtime
		runs += s.RunCount
	}
	return runtime, runs
}
