package metadata

import (
	"slices"
	"sort"

	"github.com/pxq-dev/pxq/types"
)

// Modes a Snapshot can be taken in: what kind of provider it comes from.
const (
	ModeKubernetes = "kubernetes" // sources/k8s: pods, services, … with history
	ModeHost       = "host"       // a plain host: processes and the hostname
	ModeNone       = "none"       // no metadata
)

// Snapshot is what a provider knew of the entities that existed during a
// time range, as plain values that can be saved (a capture keeps one) and
// answered from later by a Replay, without the API server or the
// processes it describes. Lists of one kind are in the order a History
// rebuilds its name lookups from (see History.During).
type Snapshot struct {
	Mode     string `json:"mode"`
	Hostname string `json:"hostname,omitempty"`
	NodeName string `json:"node_name,omitempty"`
	// StartNS and EndNS bound the time range the snapshot covers.
	StartNS int64 `json:"start_ns,omitempty"`
	EndNS   int64 `json:"end_ns,omitempty"`

	// Processes are the processes behind the rows of the range, as the
	// provider resolved them (with their container and pod). They are
	// not part of the JSON form: a capture keeps them in a file of
	// their own, which older captures already have.
	Processes []*Process `json:"-"`

	Pods        []*Pod        `json:"pods,omitempty"`
	Services    []*Service    `json:"services,omitempty"`
	ReplicaSets []*ReplicaSet `json:"replica_sets,omitempty"`
	Deployments []*Deployment `json:"deployments,omitempty"`
	Containers  []*Container  `json:"containers,omitempty"`
	Namespaces  []*Namespace  `json:"namespaces,omitempty"`
	Nodes       []*Node       `json:"nodes,omitempty"`
	// PodIPs lists who held each pod IP during the range, oldest first.
	PodIPs map[string][]IPLease `json:"pod_ips,omitempty"`
	// ServiceIPs maps the cluster IPs of the services that were live
	// when the snapshot was taken to their UIDs.
	ServiceIPs map[string]string `json:"service_ips,omitempty"`
}

// Snapshotter is a provider that can describe what it knows of a time
// range (ns since the epoch, both ends included). Processes are left to
// the caller, which knows which ones its rows name.
type Snapshotter interface {
	Snapshot(start, end int64) *Snapshot
}

// Take returns the snapshot of p over [start, end] with the processes of
// upids (those p resolves). A provider that is not a Snapshotter gives
// its hostname only.
func Take(p Provider, start, end int64, upids []types.UInt128Value) *Snapshot {
	var s *Snapshot
	if sn, ok := p.(Snapshotter); ok {
		s = sn.Snapshot(start, end)
	} else {
		s = &Snapshot{Mode: ModeNone, Hostname: p.Hostname(), StartNS: start, EndNS: end}
	}
	pods, ctrs := map[string]bool{}, map[string]bool{}
	for _, v := range s.Pods {
		pods[v.UID] = true
	}
	for _, v := range s.Containers {
		ctrs[v.ID] = true
	}
	for _, u := range upids {
		proc := p.Process(u)
		if proc == nil {
			continue
		}
		s.Processes = append(s.Processes, proc)
		// A row's pod and container are kept even if the provider's
		// times put them outside the range (creation times are in
		// whole seconds).
		if uid := proc.PodUID; uid != "" && !pods[uid] {
			if v := p.Pod(uid); v != nil {
				s.Pods, pods[uid] = append(s.Pods, v), true
			}
		}
		if id := proc.ContainerID; id != "" && !ctrs[id] {
			if v := p.Container(id); v != nil {
				s.Containers, ctrs[id] = append(s.Containers, v), true
			}
		}
	}
	sort.Slice(s.Processes, func(i, j int) bool {
		a, b := s.Processes[i].UPID, s.Processes[j].UPID
		return a.High < b.High || (a.High == b.High && a.Low < b.Low)
	})
	return s
}

// Snapshot describes a host-mode provider: its hostname. Its processes
// are added by Take.
func (h *Host) Snapshot(start, end int64) *Snapshot {
	return &Snapshot{Mode: ModeHost, Hostname: h.Hostname(), StartNS: start, EndNS: end}
}

// procKey identifies a process on one node: a UPID without its ASID, as
// Processes looks processes up.
type procKey struct {
	pid   uint32
	start uint64
}

// Replay answers lookups from a Snapshot as the provider it was taken
// from answered them during the snapshot's range. What the snapshot does
// not know is asked of a next provider (None by default), so that a
// replayed capture can sit beside live data. Read-only once made, so
// safe for concurrent use.
type Replay struct {
	snap  *Snapshot
	next  Provider
	procs map[procKey]*Process

	pods        History[*Pod]
	services    History[*Service]
	replicaSets History[*ReplicaSet]
	deployments History[*Deployment]
	containers  History[*Container]
	namespaces  History[*Namespace]
	nodes       History[*Node]
}

// NewReplay returns a provider answering from s, then from next (nil
// for none).
func NewReplay(s *Snapshot, next Provider) *Replay {
	if next == nil {
		next = None{}
	}
	r := &Replay{snap: s, next: next, procs: make(map[procKey]*Process, len(s.Processes))}
	for _, p := range s.Processes {
		r.procs[procKey{p.UPID.PID(), p.UPID.Low}] = p
	}
	putAll(&r.pods, s.Pods)
	putAll(&r.services, s.Services)
	putAll(&r.replicaSets, s.ReplicaSets)
	putAll(&r.deployments, s.Deployments)
	putAll(&r.containers, s.Containers)
	putAll(&r.namespaces, s.Namespaces)
	putAll(&r.nodes, s.Nodes)
	return r
}

func putAll[T Entity](h *History[T], vs []T) {
	for _, v := range vs {
		h.Put(v)
	}
}

// Mode says what kind of provider the snapshot was taken from.
func (r *Replay) Mode() string { return r.snap.Mode }

// Process returns the process of upid as it was resolved when the
// snapshot was taken (another ASID for the same pid and start time is
// the same process, as in Processes).
func (r *Replay) Process(upid types.UInt128Value) *Process {
	p := r.procs[procKey{upid.PID(), upid.Low}]
	if p == nil {
		return r.next.Process(upid)
	}
	if p.UPID != upid {
		cp := *p
		cp.UPID = upid
		return &cp
	}
	return p
}

// or returns v when found, else what the next provider says.
func or[T any](v T, ok bool, next func() T) T {
	if ok {
		return v
	}
	return next()
}

func (r *Replay) Pod(uid string) *Pod {
	v, ok := r.pods.Get(uid)
	return or(v, ok, func() *Pod { return r.next.Pod(uid) })
}

func (r *Replay) PodByName(nsName string) *Pod {
	v, ok := r.pods.Named(nsName)
	return or(v, ok, func() *Pod { return r.next.PodByName(nsName) })
}

func (r *Replay) PodByIP(ip string, t int64) *Pod {
	v, ok := r.pods.Get(PickLease(r.snap.PodIPs[ip], t))
	return or(v, ok, func() *Pod { return r.next.PodByIP(ip, t) })
}

func (r *Replay) IPHistory(ip string) []IPLease {
	l, ok := r.snap.PodIPs[ip]
	return or(slices.Clip(l), ok, func() []IPLease { return r.next.IPHistory(ip) })
}

func (r *Replay) Service(uid string) *Service {
	v, ok := r.services.Get(uid)
	return or(v, ok, func() *Service { return r.next.Service(uid) })
}

func (r *Replay) ServiceByName(nsName string) *Service {
	v, ok := r.services.Named(nsName)
	return or(v, ok, func() *Service { return r.next.ServiceByName(nsName) })
}

func (r *Replay) ServiceByIP(ip string) *Service {
	v, ok := r.services.Get(r.snap.ServiceIPs[ip])
	return or(v, ok, func() *Service { return r.next.ServiceByIP(ip) })
}

func (r *Replay) ReplicaSet(uid string) *ReplicaSet {
	v, ok := r.replicaSets.Get(uid)
	return or(v, ok, func() *ReplicaSet { return r.next.ReplicaSet(uid) })
}

func (r *Replay) ReplicaSetByName(nsName string) *ReplicaSet {
	v, ok := r.replicaSets.Named(nsName)
	return or(v, ok, func() *ReplicaSet { return r.next.ReplicaSetByName(nsName) })
}

func (r *Replay) Deployment(uid string) *Deployment {
	v, ok := r.deployments.Get(uid)
	return or(v, ok, func() *Deployment { return r.next.Deployment(uid) })
}

func (r *Replay) DeploymentByName(nsName string) *Deployment {
	v, ok := r.deployments.Named(nsName)
	return or(v, ok, func() *Deployment { return r.next.DeploymentByName(nsName) })
}

func (r *Replay) Container(id string) *Container {
	v, ok := r.containers.Get(id)
	return or(v, ok, func() *Container { return r.next.Container(id) })
}

func (r *Replay) ContainerByName(name string) *Container {
	v, ok := r.containers.Named(name)
	return or(v, ok, func() *Container { return r.next.ContainerByName(name) })
}

func (r *Replay) Namespace(name string) *Namespace {
	v, ok := r.namespaces.Named(name)
	return or(v, ok, func() *Namespace { return r.next.Namespace(name) })
}

func (r *Replay) Node(name string) *Node {
	v, ok := r.nodes.Named(name)
	return or(v, ok, func() *Node { return r.next.Node(name) })
}

// Hostname is the hostname of the node the snapshot was taken on.
func (r *Replay) Hostname() string {
	if r.snap.Hostname != "" {
		return r.snap.Hostname
	}
	return r.next.Hostname()
}

// Names lists the names of the entities of a kind that were live when
// the snapshot was taken (as k8s.Store.Names does), with those of the
// next provider when it lists names too.
func (r *Replay) Names(kind string) []string {
	var out []string
	switch kind {
	case "pod":
		out = r.pods.LiveNames()
	case "service":
		out = r.services.LiveNames()
	case "namespace":
		out = r.namespaces.LiveNames()
	case "node":
		out = r.nodes.LiveNames()
	}
	if n, ok := r.next.(interface{ Names(string) []string }); ok {
		out = append(out, n.Names(kind)...)
		sort.Strings(out)
		out = slices.Compact(out)
	}
	return out
}

// Snapshot describes what the replay knows of [start, end], so that a
// replayed capture can be saved again with its metadata.
func (r *Replay) Snapshot(start, end int64) *Snapshot {
	s := &Snapshot{
		Mode:        r.snap.Mode,
		Hostname:    r.Hostname(),
		NodeName:    r.snap.NodeName,
		StartNS:     start,
		EndNS:       end,
		Pods:        r.pods.During(start, end),
		Services:    r.services.During(start, end),
		ReplicaSets: r.replicaSets.During(start, end),
		Deployments: r.deployments.During(start, end),
		Containers:  r.containers.During(start, end),
		Namespaces:  r.namespaces.During(start, end),
		Nodes:       r.nodes.During(start, end),
		PodIPs:      LeasesDuring(r.snap.PodIPs, start, end),
	}
	s.ServiceIPs = ServiceIPsOf(r.snap.ServiceIPs, s.Services)
	return s
}

// LeasesDuring keeps, of an IP → leases map, the leases held at some
// time in [start, end].
func LeasesDuring(all map[string][]IPLease, start, end int64) map[string][]IPLease {
	out := make(map[string][]IPLease)
	for ip, ls := range all {
		var kept []IPLease
		for _, l := range ls {
			if l.StartNS <= end && (l.StopNS == 0 || l.StopNS >= start) {
				kept = append(kept, l)
			}
		}
		if len(kept) > 0 {
			out[ip] = kept
		}
	}
	return out
}

// ServiceIPsOf keeps the entries of an IP → service UID map whose service
// is among svcs.
func ServiceIPsOf(ips map[string]string, svcs []*Service) map[string]string {
	keep := make(map[string]bool, len(svcs))
	for _, s := range svcs {
		keep[s.UID] = true
	}
	out := make(map[string]string)
	for ip, uid := range ips {
		if keep[uid] {
			out[ip] = uid
		}
	}
	return out
}

var (
	_ Provider    = (*Replay)(nil)
	_ Snapshotter = (*Replay)(nil)
	_ Snapshotter = (*Host)(nil)
)
