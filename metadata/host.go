package metadata

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pxq-dev/pxq/types"
)

// Host is the provider for a plain Linux host with no cluster. Processes
// resolve from /proc, and each belongs to a host entity (see EntityOf): a
// container, a systemd service or an executable, which Host answers for as a
// pod "namespace/name" on the node named after the host, with services
// for systemd services and compose services, so that scripts written for
// Kubernetes name what runs here. Local addresses (loopback and the
// host's own) belong to a pod of the host itself, "host/<hostname>".
// Replica sets, deployments and service IPs are unknown.
//
// An entity is known once a process of it has been resolved (a row
// names the process): Pod, PodByName, Service and the rest answer for
// those. Its UIDs are derived from its name (EntityUID), so they are the
// same in every run.
type Host struct {
	None
	procs   *Processes
	runtime *runtimeNames
	local   localAddrs
	boot    int64
	hostPod string // UID of the host's own pod

	mu  sync.RWMutex
	idx *hostIndex
}

// HostConfig says where a Host reads from; zero fields take the
// defaults.
type HostConfig struct {
	Hostname   string // default: os.Hostname()
	ProcRoot   string // default: /proc
	DockerRoot string // default: /var/lib/docker; "-" reads no docker files
	PodmanRoot string // default: /var/lib/containers/storage; "-" for none
}

// NewHost returns the provider of this host, reading /proc and the
// container runtimes' files in their default places.
func NewHost() (*Host, error) { return NewHostConfig(HostConfig{}) }

// NewHostConfig returns the provider of a host as cfg describes it.
func NewHostConfig(cfg HostConfig) (*Host, error) {
	if cfg.Hostname == "" {
		name, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("metadata: hostname: %w", err)
		}
		cfg.Hostname = name
	}
	root := func(v, def string) string {
		switch v {
		case "":
			return def
		case "-":
			return ""
		}
		return v
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	h := &Host{
		procs:   NewProcesses(cfg.ProcRoot, cfg.Hostname),
		runtime: newRuntimeNames(root(cfg.DockerRoot, "/var/lib/docker"), root(cfg.PodmanRoot, "/var/lib/containers/storage")),
	}
	h.boot = h.procs.boot()
	h.idx = h.newIndex()
	h.procs.complete = h.complete
	return h, nil
}

// maxEntities bounds the entity index. Past it, the index is rebuilt from
// the processes still cached; since every cached process has one entity,
// a rebuild leaves room for maxProcesses/4 new ones.
const maxEntities = maxProcesses + maxProcesses/4

// newIndex returns an index holding the host's own pod and node.
func (h *Host) newIndex() *hostIndex {
	x := &hostIndex{}
	host := h.procs.Hostname()
	h.hostPod = x.put(hostEntity(host), host, h.boot, "")
	x.node(host, h.boot, h.local.internalIP())
	return x
}

// complete names the entity of a process before Processes caches it: the
// container runtime's name and compose labels for its container (read
// once per container), and the pod UID of its entity.
func (h *Host) complete(p *Process) {
	if p.ContainerID != "" && p.ContainerName == "" {
		info := h.runtime.lookup(p.ContainerID, ParseCgroupPath(p.Cgroup).Runtime)
		p.ContainerName, p.LabelsJSON = info.name, info.labelsJSON
		if p.ContainerName == "" {
			p.ContainerName = shortID(p.ContainerID)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.idx.npods >= maxEntities {
		x := h.newIndex()
		for _, c := range h.procs.all() {
			x.add(c, h.procs.Hostname())
		}
		h.idx = x
	}
	p.PodUID = h.idx.add(p, h.procs.Hostname())
}

// Process describes the process of upid, from /proc or from what was
// observed of it earlier, with the pod UID of its entity.
func (h *Host) Process(upid types.UInt128Value) *Process { return h.procs.Lookup(upid) }

// Hostname returns the host's name.
func (h *Host) Hostname() string { return h.procs.Hostname() }

// Processes remembers what a sampler or tracer reported of processes
// (so that they stay known after they exit).
func (h *Host) Processes() *Processes { return h.procs }

// Pod looks an entity's pod up by UID.
func (h *Host) Pod(uid string) *Pod { return byUID(h, pods, uid) }

// PodByName looks an entity's pod up by "namespace/name".
func (h *Host) PodByName(nsName string) *Pod { return byName(h, pods, nsName) }

// PodByIP returns the host's own pod for a local address, else nil.
func (h *Host) PodByIP(ip string, t int64) *Pod {
	uid := PickLease(h.IPHistory(ip), t)
	if uid == "" {
		return nil
	}
	return h.Pod(uid)
}

// IPHistory says that the host's own pod holds a local address since
// boot; other addresses have no history.
func (h *Host) IPHistory(ip string) []IPLease {
	if !h.local.has(ip) {
		return nil
	}
	return []IPLease{{PodUID: h.hostPod, StartNS: h.boot}}
}

// Service looks a systemd or compose service up by UID.
func (h *Host) Service(uid string) *Service { return byUID(h, services, uid) }

// ServiceByName looks a systemd or compose service up by
// "namespace/name".
func (h *Host) ServiceByName(nsName string) *Service { return byName(h, services, nsName) }

// Container looks a container up by runtime id.
func (h *Host) Container(id string) *Container { return byUID(h, containers, id) }

// ContainerByName looks a container up by the name its entity has.
func (h *Host) ContainerByName(name string) *Container { return byName(h, containers, name) }

// Namespace looks a namespace of host entities up by name.
func (h *Host) Namespace(name string) *Namespace { return byName(h, namespaces, name) }

// Node looks a node up by name: this host.
func (h *Host) Node(name string) *Node { return byName(h, nodes, name) }

// Names lists the names of the known entities of a kind ("pod",
// "service", "namespace" or "node"), sorted, as the UI suggests them.
func (h *Host) Names(kind string) []string {
	names := liveNames[kind]
	if names == nil {
		return nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return names(h.idx)
}

// The histories of a host index, for byUID, byName and Names.
func pods(x *hostIndex) *History[*Pod]             { return &x.pods }
func services(x *hostIndex) *History[*Service]     { return &x.services }
func containers(x *hostIndex) *History[*Container] { return &x.containers }
func namespaces(x *hostIndex) *History[*Namespace] { return &x.namespaces }
func nodes(x *hostIndex) *History[*Node]           { return &x.nodes }

// liveNames lists the live names of the kinds Names answers for.
var liveNames = map[string]func(*hostIndex) []string{
	"pod":       func(x *hostIndex) []string { return pods(x).LiveNames() },
	"service":   func(x *hostIndex) []string { return services(x).LiveNames() },
	"namespace": func(x *hostIndex) []string { return namespaces(x).LiveNames() },
	"node":      func(x *hostIndex) []string { return nodes(x).LiveNames() },
}

// byUID looks an entity up by UID in the history in picks of h's index,
// under h's read lock (the index changes as processes are resolved).
func byUID[T Entity](h *Host, in func(*hostIndex) *History[T], uid string) T {
	h.mu.RLock()
	defer h.mu.RUnlock()
	v, _ := in(h.idx).Get(uid)
	return v
}

// byName is byUID by name.
func byName[T Entity](h *Host, in func(*hostIndex) *History[T], name string) T {
	h.mu.RLock()
	defer h.mu.RUnlock()
	v, _ := in(h.idx).Named(name)
	return v
}

var _ Provider = (*Host)(nil)

// localAddrs tells the host's own addresses: loopback, and those of its
// interfaces, listed again at most every localAddrsTTL.
type localAddrs struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
	first string // the first non-loopback IPv4, for the node's address
}

const localAddrsTTL = 10 * time.Second

// has reports whether ip (text, IPv4-mapped or not) is local.
func (l *localAddrs) has(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	if a.IsLoopback() {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refreshLocked()
	return l.addrs[a]
}

func (l *localAddrs) internalIP() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refreshLocked()
	return l.first
}

func (l *localAddrs) refreshLocked() {
	if l.addrs != nil && time.Since(l.at) < localAddrsTTL {
		return
	}
	l.at = time.Now()
	ifs, err := net.InterfaceAddrs()
	if err != nil && l.addrs != nil {
		return // keep what was known
	}
	l.addrs, l.first = make(map[netip.Addr]bool, len(ifs)), ""
	for _, ifa := range ifs {
		n, ok := ifa.(*net.IPNet)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		l.addrs[a] = true
		if l.first == "" && a.Is4() && !a.IsLoopback() {
			l.first = a.String()
		}
	}
}

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

	// complete, when set, finishes a process before it is cached (Host
	// names its entity).
	complete func(*Process)

	mu    sync.RWMutex
	byPID map[uint32]*Process
	// recheck holds the processes read young (or with no command line),
	// by pid, with the time to read them again: a process looked up
	// between its fork and its exec has its parent's command line (or,
	// during the exec, none), and an entrypoint script that execs its
	// program keeps the pid and start time. Each is read once more.
	recheck    map[uint32]int64
	youngNS    int64 // a process younger than this when read is read again
	recheckNow func() int64
}

// youngProcess is the age under which a process read from /proc is read
// again once it is older: its exec has then most likely happened.
const youngProcess = 2 * time.Second

// NewProcesses returns a resolver reading the procfs mounted at root
// ("/proc"); hostname fills Process.Hostname.
func NewProcesses(root, hostname string) *Processes {
	return &Processes{root: root, hostname: hostname, byPID: make(map[uint32]*Process),
		recheck: map[uint32]int64{}, youngNS: int64(youngProcess), recheckNow: func() int64 { return time.Now().UnixNano() }}
}

// Hostname returns the hostname processes are given.
func (p *Processes) Hostname() string { return p.hostname }

// Lookup returns the process of upid, or nil when it is neither cached
// nor running. The ASID is not checked: a Processes describes one node.
func (p *Processes) Lookup(upid types.UInt128Value) *Process {
	pid := upid.PID()
	p.mu.RLock()
	c := p.byPID[pid]
	due, recheck := p.recheck[pid]
	p.mu.RUnlock()
	if recheck && c != nil && c.UPID.Low == upid.Low && p.recheckNow() >= due {
		p.mu.Lock()
		delete(p.recheck, pid) // once
		p.mu.Unlock()
		if e, err := readProc(p.root, pid, upid.Low); err == nil && (e.cmdline != c.Cmdline || e.path != c.Cgroup) {
			c = p.fromProc(c.UPID, pid, e)
			p.store(c)
		}
	}
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
	proc := p.fromProc(upid, pid, e)
	p.store(proc)
	if now := p.recheckNow(); proc.Cmdline == "" || now-proc.StartNS < p.youngNS {
		p.mu.Lock()
		if len(p.recheck) < maxProcesses {
			p.recheck[pid] = max(proc.StartNS+p.youngNS, now+int64(100*time.Millisecond))
		}
		p.mu.Unlock()
	}
	return proc
}

// fromProc makes the Process of what /proc said of it.
func (p *Processes) fromProc(upid types.UInt128Value, pid uint32, e procEntry) *Process {
	proc := &Process{
		UPID:        upid,
		PID:         int64(pid),
		StartNS:     p.boot() + int64(e.startNS),
		Cmdline:     e.cmdline,
		ContainerID: e.cgroup.ContainerID,
		PodUID:      e.cgroup.PodUID,
		Hostname:    p.hostname,
		Cgroup:      e.path,
	}
	if p.complete != nil {
		p.complete(proc)
	}
	return proc
}

// Observe records a process reported by another source (an exec event, a
// /proc sample), so that it resolves even after it exits. Fields left
// empty are not filled in, except what a Host derives (its entity's pod
// UID, its container's name).
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
	if p.complete != nil {
		p.complete(&proc)
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

// all returns the cached processes.
func (p *Processes) all() []*Process {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*Process, 0, len(p.byPID))
	for _, c := range p.byPID {
		out = append(out, c)
	}
	return out
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
	for pid := range p.recheck {
		if _, ok := p.byPID[pid]; !ok {
			delete(p.recheck, pid)
		}
	}
}

// boot returns the boot time in ns since the epoch (0 if unknown).
func (p *Processes) boot() int64 {
	p.bootOnce.Do(func() {
		p.bootNS, _ = readBootNS(p.root)
	})
	return p.bootNS
}
