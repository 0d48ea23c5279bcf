package metadata

import (
	"fmt"
	"os"
	"sync"

	"github.com/pxq-dev/pxq/types"
)

// Host is the provider for a plain Linux host with no cluster: processes
// resolve from /proc, every pod, service and other Kubernetes lookup
// returns nil (so ctx['pod'] is ""), and Hostname is the host's name.
type Host struct {
	None
	procs *Processes
}

// NewHost returns the provider of this host, reading /proc.
func NewHost() (*Host, error) {
	name, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("metadata: hostname: %w", err)
	}
	return &Host{procs: NewProcesses("/proc", name)}, nil
}

// Process describes the process of upid, from /proc or from what was
// observed of it earlier.
func (h *Host) Process(upid types.UInt128Value) *Process { return h.procs.Lookup(upid) }

// Hostname returns the host's name.
func (h *Host) Hostname() string { return h.procs.Hostname() }

// Processes remembers what a sampler or tracer reported of processes
// (so that they stay known after they exit).
func (h *Host) Processes() *Processes { return h.procs }

var _ Provider = (*Host)(nil)

// maxProcesses bounds the process cache; past it, entries of processes
// that have exited are dropped.
const maxProcesses = 1 << 15

// Processes resolves UPIDs to processes from a procfs tree. It caches
// one entry per pid, checked against the UPID's start time, so that a
// reused pid never names the wrong process; a process stays known after it
// exits until its pid is reused or the cache overflows. Safe for
// concurrent use.
type Processes struct {
	root     string
	hostname string

	bootOnce sync.Once
	bootNS   int64

	mu    sync.RWMutex
	byPID map[uint32]*Process
}

// NewProcesses returns a resolver reading the procfs mounted at root
// ("/proc"); hostname fills Process.Hostname.
func NewProcesses(root, hostname string) *Processes {
	return &Processes{root: root, hostname: hostname, byPID: make(map[uint32]*Process)}
}

// Hostname returns the hostname processes are given.
func (p *Processes) Hostname() string { return p.hostname }

// Lookup returns the process of upid, or nil when it is neither cached
// nor running. The ASID is not checked: a Processes describes one node.
func (p *Processes) Lookup(upid types.UInt128Value) *Process {
	pid := upid.PID()
	p.mu.RLock()
	c := p.byPID[pid]
	p.mu.RUnlock()
	if c != nil && c.UPID.Low == upid.Low {
		if c.UPID == upid {
			return c
		}
		cp := *c // another ASID for the same process
		cp.UPID = upid
		return &cp
	}
	e, err := readProc(p.root, pid, upid.Low)
	if err != nil {
		return nil
	}
	proc := &Process{
		UPID:        upid,
		PID:         int64(pid),
		StartNS:     p.boot() + int64(e.startNS),
		Cmdline:     e.cmdline,
		ContainerID: e.cgroup.ContainerID,
		PodUID:      e.cgroup.PodUID,
		Hostname:    p.hostname,
	}
	p.store(proc)
	return proc
}

// Observe records a process reported by another source (an exec event, a
// /proc sample), so that it resolves even after it exits. Fields left
// empty are not filled in.
func (p *Processes) Observe(proc Process) {
	if proc.PID == 0 {
		proc.PID = int64(proc.UPID.PID())
	}
	if proc.StartNS == 0 {
		proc.StartNS = p.boot() + int64(proc.UPID.Low)
	}
	if proc.Hostname == "" {
		proc.Hostname = p.hostname
	}
	p.store(&proc)
}

func (p *Processes) store(proc *Process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.byPID) >= maxProcesses {
		p.sweepLocked()
	}
	p.byPID[proc.UPID.PID()] = proc
}

// sweepLocked drops the entries of processes that are gone or whose pid
// was reused; if that frees too little, it drops everything.
func (p *Processes) sweepLocked() {
	for pid, c := range p.byPID {
		if start, err := readStartNS(p.root, pid); err != nil || start != c.UPID.Low {
			delete(p.byPID, pid)
		}
	}
	if len(p.byPID) > maxProcesses*3/4 {
		clear(p.byPID)
	}
}

// boot returns the boot time in ns since the epoch (0 if unknown).
func (p *Processes) boot() int64 {
	p.bootOnce.Do(func() {
		p.bootNS, _ = readBootNS(p.root)
	})
	return p.bootNS
}
