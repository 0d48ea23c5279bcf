// Package metadata defines what pxq knows about the processes, pods,
// services, namespaces and nodes behind its rows, and the interface that
// answers metadata functions (upid_to_pod_name, ip_to_pod_id, ctx['pod']).
// The Kubernetes source (sources/k8s) implements it on a cluster; Host
// implements it on a plain Linux host; Replay answers from a Snapshot,
// what a capture keeps of either.
//
// Names: a pod, service, replica set or deployment is named
// "namespace/name" wherever a lookup takes or a field says so, as PxL
// scripts expect; namespaces, nodes and containers have bare names.
// Times are ns since the epoch; a StopNS of 0 means "still there".
package metadata

import "github.com/pxq-dev/pxq/types"

// Provider answers metadata lookups. Every method returns nil when the
// entity is unknown; implementations must be safe for concurrent use and
// cheap per call (the executor calls them once per distinct value in a
// batch, not per row). Entities that were deleted stay known, with their
// StopNS set, for the provider's retention window, so that a query over
// the past names what was there then. Returned values must not be
// modified.
type Provider interface {
	// Process describes the process of a UPID.
	Process(upid types.UInt128Value) *Process
	// Pod looks a pod up by UID.
	Pod(uid string) *Pod
	// PodByName looks a pod up by "namespace/name". When several pods
	// had the name, the live one wins, else the one that stopped last.
	PodByName(nsName string) *Pod
	// PodByIP returns the pod that held ip at time t (ns since the
	// epoch). t == 0 means the pod that holds ip now or, if none, the
	// one that held it last.
	PodByIP(ip string, t int64) *Pod
	// IPHistory lists who held a pod IP and when, oldest first, so that
	// a kernel resolves each distinct IP once and then each row's time
	// against the short list.
	IPHistory(ip string) []IPLease
	// Service looks a service up by UID.
	Service(uid string) *Service
	// ServiceByName looks a service up by "namespace/name".
	ServiceByName(nsName string) *Service
	// ServiceByIP returns the service with cluster IP ip.
	ServiceByIP(ip string) *Service
	// ReplicaSet looks a replica set up by UID.
	ReplicaSet(uid string) *ReplicaSet
	// ReplicaSetByName looks a replica set up by "namespace/name".
	ReplicaSetByName(nsName string) *ReplicaSet
	// Deployment looks a deployment up by UID.
	Deployment(uid string) *Deployment
	// DeploymentByName looks a deployment up by "namespace/name".
	DeploymentByName(nsName string) *Deployment
	// Container looks a container up by runtime id (64 hex digits,
	// without the "containerd://" scheme).
	Container(id string) *Container
	// ContainerByName looks a container up by its (bare) name; when
	// several pods have a container of that name, the live one started
	// last wins.
	ContainerByName(name string) *Container
	// Namespace looks a namespace up by name.
	Namespace(name string) *Namespace
	// Node looks a node up by name.
	Node(name string) *Node
	// Hostname is the name of the node this provider describes.
	Hostname() string
}

// Process is what is known of one process.
type Process struct {
	UPID          types.UInt128Value `json:"-"`
	PID           int64              `json:"pid,omitempty"`
	StartNS       int64              `json:"start_ns,omitempty"` // ns since the epoch
	Cmdline       string             `json:"cmdline,omitempty"`
	ContainerID   string             `json:"container_id,omitempty"`   // "" when not in a container
	ContainerName string             `json:"container_name,omitempty"` // "" unless a pod's container
	PodUID        string             `json:"pod_uid,omitempty"`        // "" when not in a pod
	Hostname      string             `json:"hostname,omitempty"`
	Cgroup        string             `json:"cgroup,omitempty"`      // the cgroup path host entities are named from
	LabelsJSON    string             `json:"labels_json,omitempty"` // the runtime's compose labels of its container (host mode)
}

// Pod is what is known of one pod. Names are "namespace/name" in the
// fields that say so, as PxL scripts expect.
type Pod struct {
	UID            string   `json:"uid,omitempty"`
	Name           string   `json:"name,omitempty"` // bare name
	Namespace      string   `json:"namespace,omitempty"`
	NodeName       string   `json:"node_name,omitempty"`
	Hostname       string   `json:"hostname,omitempty"`
	IP             string   `json:"ip,omitempty"`
	StartNS        int64    `json:"start_ns,omitempty"`
	StopNS         int64    `json:"stop_ns,omitempty"` // 0 while running
	Phase          string   `json:"phase,omitempty"`
	StatusJSON     string   `json:"status_json,omitempty"` // {"phase":…,"message":…,"reason":…,"ready":…}
	LabelsJSON     string   `json:"labels_json,omitempty"`
	QOSClass       string   `json:"qos_class,omitempty"`
	ServiceUIDs    []string `json:"service_uids,omitempty"`
	ServiceNames   []string `json:"service_names,omitempty"` // "namespace/name"
	ReplicaSetUID  string   `json:"replica_set_uid,omitempty"`
	ReplicaSetName string   `json:"replica_set_name,omitempty"` // "namespace/name"
	DeploymentUID  string   `json:"deployment_uid,omitempty"`
	DeploymentName string   `json:"deployment_name,omitempty"` // "namespace/name"
	OwnerRefsJSON  string   `json:"owner_refs_json,omitempty"`
	ContainerIDs   []string `json:"container_ids,omitempty"`
}

// QualifiedName returns "namespace/name".
func (p *Pod) QualifiedName() string { return p.Namespace + "/" + p.Name }

// IPLease says that the pod PodUID held an IP from StartNS until StopNS
// (0: still holds it).
type IPLease struct {
	PodUID  string `json:"pod_uid,omitempty"`
	StartNS int64  `json:"start_ns,omitempty"`
	StopNS  int64  `json:"stop_ns,omitempty"`
}

// Covers reports whether the lease was held at time t.
func (l IPLease) Covers(t int64) bool {
	return l.StartNS <= t && (l.StopNS == 0 || t < l.StopNS)
}

// PickLease chooses from leases (oldest first) the pod that held the IP
// at t, with PodByIP's meaning of t == 0. It returns "" when none did.
func PickLease(leases []IPLease, t int64) string {
	if t == 0 {
		var best *IPLease
		for i := range leases {
			l := &leases[i]
			if l.StopNS == 0 {
				return l.PodUID
			}
			if best == nil || l.StopNS >= best.StopNS {
				best = l
			}
		}
		if best == nil {
			return ""
		}
		return best.PodUID
	}
	for i := len(leases) - 1; i >= 0; i-- {
		if leases[i].Covers(t) {
			return leases[i].PodUID
		}
	}
	return ""
}

// Service is what is known of one service.
type Service struct {
	UID         string   `json:"uid,omitempty"`
	Name        string   `json:"name,omitempty"`
	Namespace   string   `json:"namespace,omitempty"`
	ClusterIP   string   `json:"cluster_ip,omitempty"`
	ExternalIPs []string `json:"external_ips,omitempty"`
	StartNS     int64    `json:"start_ns,omitempty"`
	StopNS      int64    `json:"stop_ns,omitempty"`
}

// QualifiedName returns "namespace/name".
func (s *Service) QualifiedName() string { return s.Namespace + "/" + s.Name }

// ReplicaSet is what is known of one replica set.
type ReplicaSet struct {
	UID            string `json:"uid,omitempty"`
	Name           string `json:"name,omitempty"` // bare name
	Namespace      string `json:"namespace,omitempty"`
	StartNS        int64  `json:"start_ns,omitempty"`
	StopNS         int64  `json:"stop_ns,omitempty"`
	StatusJSON     string `json:"status_json,omitempty"` // replica counts
	OwnerRefsJSON  string `json:"owner_refs_json,omitempty"`
	DeploymentUID  string `json:"deployment_uid,omitempty"`
	DeploymentName string `json:"deployment_name,omitempty"` // "namespace/name"
}

// QualifiedName returns "namespace/name".
func (r *ReplicaSet) QualifiedName() string { return r.Namespace + "/" + r.Name }

// Deployment is what is known of one deployment.
type Deployment struct {
	UID        string `json:"uid,omitempty"`
	Name       string `json:"name,omitempty"` // bare name
	Namespace  string `json:"namespace,omitempty"`
	StartNS    int64  `json:"start_ns,omitempty"`
	StopNS     int64  `json:"stop_ns,omitempty"`
	StatusJSON string `json:"status_json,omitempty"` // replica counts and conditions
}

// QualifiedName returns "namespace/name".
func (d *Deployment) QualifiedName() string { return d.Namespace + "/" + d.Name }

// Container is what is known of one container of a pod.
type Container struct {
	ID         string `json:"id,omitempty"`   // runtime id, 64 hex digits
	Name       string `json:"name,omitempty"` // bare name, as in the pod spec
	PodUID     string `json:"pod_uid,omitempty"`
	State      string `json:"state,omitempty"`       // Running, Waiting, Terminated or Unknown
	StatusJSON string `json:"status_json,omitempty"` // {"state":…,"message":…,"reason":…}
	StartNS    int64  `json:"start_ns,omitempty"`
	StopNS     int64  `json:"stop_ns,omitempty"`
}

// Namespace is what is known of one namespace.
type Namespace struct {
	UID     string `json:"uid,omitempty"`
	Name    string `json:"name,omitempty"`
	StartNS int64  `json:"start_ns,omitempty"`
	StopNS  int64  `json:"stop_ns,omitempty"`
}

// Node is what is known of one node.
type Node struct {
	UID        string `json:"uid,omitempty"`
	Name       string `json:"name,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	InternalIP string `json:"internal_ip,omitempty"`
	StartNS    int64  `json:"start_ns,omitempty"`
	StopNS     int64  `json:"stop_ns,omitempty"`
}

// None knows nothing: every lookup returns nil. Embed it in a provider
// that answers only some lookups.
type None struct{}

func (None) Process(types.UInt128Value) *Process { return nil }
func (None) Pod(string) *Pod                     { return nil }
func (None) PodByName(string) *Pod               { return nil }
func (None) PodByIP(string, int64) *Pod          { return nil }
func (None) IPHistory(string) []IPLease          { return nil }
func (None) Service(string) *Service             { return nil }
func (None) ServiceByName(string) *Service       { return nil }
func (None) ServiceByIP(string) *Service         { return nil }
func (None) ReplicaSet(string) *ReplicaSet       { return nil }
func (None) ReplicaSetByName(string) *ReplicaSet { return nil }
func (None) Deployment(string) *Deployment       { return nil }
func (None) DeploymentByName(string) *Deployment { return nil }
func (None) Container(string) *Container         { return nil }
func (None) ContainerByName(string) *Container   { return nil }
func (None) Namespace(string) *Namespace         { return nil }
func (None) Node(string) *Node                   { return nil }
func (None) Hostname() string                    { return "" }

var _ Provider = None{}
