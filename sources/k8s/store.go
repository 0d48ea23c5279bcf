// Package k8s keeps pxq's Kubernetes metadata: pods, services, endpoint
// slices and endpoints, namespaces, nodes, replica sets and deployments,
// fed by client-go informers and kept current, with history: a deleted
// object stays known with its stop time for a retention window, and pod
// IPs are leased by time, so that a query over the last hour names a pod
// that died half an hour ago. A process resolves to its container and
// pod through its cgroup path. Store implements metadata.Provider.
package k8s

import (
	"os"
	"sort"
	"sync"
	"time"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

// DefaultRetention is how long deleted objects stay known.
const DefaultRetention = 2 * time.Hour

// endpointSet is what one EndpointSlice or Endpoints object says: which
// pods back which service.
type endpointSet struct {
	service string // "namespace/name"
	pods    []string
}

// Store is the metadata of one cluster, seen from one node. Every
// metadata value it hands out is immutable: an update replaces it. Safe
// for concurrent use.
type Store struct {
	procs     *metadata.Processes
	nodeName  string
	retention time.Duration
	now       func() time.Time

	mu          sync.RWMutex
	pods        metadata.History[*metadata.Pod]
	services    metadata.History[*metadata.Service]
	replicaSets metadata.History[*metadata.ReplicaSet]
	deployments metadata.History[*metadata.Deployment]
	containers  metadata.History[*metadata.Container]
	namespaces  metadata.History[*metadata.Namespace]
	nodes       metadata.History[*metadata.Node]
	leases      map[string][]metadata.IPLease // pod IP → who held it
	clusterIPs  map[string]string             // service IP → UID
	endpoints   map[string]endpointSet        // "slice|endpoints/ns/name" → set
	podSets     map[string]map[string]bool    // pod UID → endpoint set keys
	rsPods      map[string]map[string]bool    // replica set UID → pod UIDs
}

// StoreConfig configures a Store.
type StoreConfig struct {
	// NodeName names the node the store runs on (default: the hostname).
	NodeName string
	// Hostname is the node's hostname (default: os.Hostname).
	Hostname string
	// ProcRoot is where procfs is mounted (default "/proc"; in a
	// container with hostPID, still "/proc").
	ProcRoot string
	// Retention is how long deleted objects stay known (default
	// DefaultRetention).
	Retention time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) *Store {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.NodeName == "" {
		cfg.NodeName = cfg.Hostname
	}
	return &Store{
		procs:      metadata.NewProcesses(cfg.ProcRoot, cfg.Hostname),
		nodeName:   cfg.NodeName,
		retention:  cfg.Retention,
		now:        cfg.Now,
		leases:     make(map[string][]metadata.IPLease),
		clusterIPs: make(map[string]string),
		endpoints:  make(map[string]endpointSet),
		podSets:    make(map[string]map[string]bool),
		rsPods:     make(map[string]map[string]bool),
	}
}

// Processes is the store's process cache; sources that see processes
// come and go may Observe them so that they resolve after they exit.
func (s *Store) Processes() *metadata.Processes { return s.procs }

// NodeName returns the name of the node the store runs on.
func (s *Store) NodeName() string { return s.nodeName }

// Process resolves upid from /proc (or what was observed of it), then its
// container id to the container's name and pod.
func (s *Store) Process(upid types.UInt128Value) *metadata.Process {
	p := s.procs.Lookup(upid)
	if p == nil || p.ContainerID == "" {
		return p
	}
	s.mu.RLock()
	c, ok := s.containers.Get(p.ContainerID)
	s.mu.RUnlock()
	if !ok || (c.Name == p.ContainerName && c.PodUID == p.PodUID) {
		return p
	}
	cp := *p
	cp.ContainerName = c.Name
	cp.PodUID = c.PodUID
	return &cp
}

// Pod looks a pod up by UID.
func (s *Store) Pod(uid string) *metadata.Pod {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, _ := s.pods.Get(uid)
	return p
}

// PodByName looks a pod up by "namespace/name".
func (s *Store) PodByName(nsName string) *metadata.Pod {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, _ := s.pods.Named(nsName)
	return p
}

// PodByIP returns the pod that held ip at time t (0: now, or last).
func (s *Store) PodByIP(ip string, t int64) *metadata.Pod {
	s.mu.RLock()
	defer s.mu.RUnlock()
	uid := metadata.PickLease(s.leases[ip], t)
	if uid == "" {
		return nil
	}
	p, _ := s.pods.Get(uid)
	return p
}

// IPHistory lists the pods that held ip, oldest first.
func (s *Store) IPHistory(ip string) []metadata.IPLease {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.leases[ip]
	return l[:len(l):len(l)] // leases are only ever appended to or replaced
}

// Service looks a service up by UID.
func (s *Store) Service(uid string) *metadata.Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.services.Get(uid)
	return v
}

// ServiceByName looks a service up by "namespace/name".
func (s *Store) ServiceByName(nsName string) *metadata.Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.services.Named(nsName)
	return v
}

// ServiceByIP returns the live service with cluster IP ip.
func (s *Store) ServiceByIP(ip string) *metadata.Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.services.Get(s.clusterIPs[ip])
	return v
}

// ReplicaSet looks a replica set up by UID.
func (s *Store) ReplicaSet(uid string) *metadata.ReplicaSet {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.replicaSets.Get(uid)
	return v
}

// ReplicaSetByName looks a replica set up by "namespace/name".
func (s *Store) ReplicaSetByName(nsName string) *metadata.ReplicaSet {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.replicaSets.Named(nsName)
	return v
}

// Deployment looks a deployment up by UID.
func (s *Store) Deployment(uid string) *metadata.Deployment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.deployments.Get(uid)
	return v
}

// DeploymentByName looks a deployment up by "namespace/name".
func (s *Store) DeploymentByName(nsName string) *metadata.Deployment {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.deployments.Named(nsName)
	return v
}

// Container looks a container up by runtime id.
func (s *Store) Container(id string) *metadata.Container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.containers.Get(id)
	return v
}

// ContainerByName looks a container up by bare name.
func (s *Store) ContainerByName(name string) *metadata.Container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.containers.Named(name)
	return v
}

// Namespace looks a namespace up by name.
func (s *Store) Namespace(name string) *metadata.Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.namespaces.Named(name)
	return v
}

// Node looks a node up by name.
func (s *Store) Node(name string) *metadata.Node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, _ := s.nodes.Named(name)
	return v
}

// Hostname is the hostname of the node the store runs on.
func (s *Store) Hostname() string { return s.procs.Hostname() }

var _ metadata.Provider = (*Store)(nil)

// Prune forgets what stopped longer than the retention window ago.
func (s *Store) Prune() { s.pruneBefore(s.now().Add(-s.retention).UnixNano()) }

// pruneBefore forgets what stopped before cutoff (ns since the epoch).
func (s *Store) pruneBefore(cutoff int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods.Prune(cutoff)
	s.services.Prune(cutoff)
	s.replicaSets.Prune(cutoff)
	s.deployments.Prune(cutoff)
	s.containers.Prune(cutoff)
	s.namespaces.Prune(cutoff)
	s.nodes.Prune(cutoff)
	for ip, ls := range s.leases {
		kept := make([]metadata.IPLease, 0, len(ls))
		for _, l := range ls {
			if l.StopNS == 0 || l.StopNS >= cutoff {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			delete(s.leases, ip)
		} else {
			s.leases[ip] = kept
		}
	}
	for uid := range s.podSets {
		if _, ok := s.pods.Get(uid); !ok {
			delete(s.podSets, uid)
		}
	}
	for rs, pods := range s.rsPods {
		for uid := range pods {
			if _, ok := s.pods.Get(uid); !ok {
				delete(pods, uid)
			}
		}
		if len(pods) == 0 {
			delete(s.rsPods, rs)
		}
	}
}

// sortedKeys returns the keys of a set, sorted.
func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Names lists the names of the live entities of a kind, sorted: "pod" and
// "service" as "namespace/name", "namespace" and "node" bare. Other kinds
// have none. The web UI offers them for entity-typed script variables.
func (s *Store) Names(kind string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch kind {
	case "pod":
		return s.pods.LiveNames()
	case "service":
		return s.services.LiveNames()
	case "namespace":
		return s.namespaces.LiveNames()
	case "node":
		return s.nodes.LiveNames()
	}
	return nil
}

// Snapshot describes what the store knows of [start, end]: the objects
// that existed at some time in it (with their lifetimes), who held each
// pod IP then, and the cluster IPs of the services among them. A capture
// keeps it, so that a replay names pods as this store did.
func (s *Store) Snapshot(start, end int64) *metadata.Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &metadata.Snapshot{
		Mode:        metadata.ModeKubernetes,
		Hostname:    s.Hostname(),
		NodeName:    s.nodeName,
		StartNS:     start,
		EndNS:       end,
		Pods:        s.pods.During(start, end),
		Services:    s.services.During(start, end),
		ReplicaSets: s.replicaSets.During(start, end),
		Deployments: s.deployments.During(start, end),
		Containers:  s.containers.During(start, end),
		Namespaces:  s.namespaces.During(start, end),
		Nodes:       s.nodes.During(start, end),
		PodIPs:      metadata.LeasesDuring(s.leases, start, end),
	}
	snap.ServiceIPs = metadata.ServiceIPsOf(s.clusterIPs, snap.Services)
	return snap
}

var _ metadata.Snapshotter = (*Store)(nil)
