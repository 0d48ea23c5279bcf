// Package metadata defines what pxq knows about the processes, pods,
// services, namespaces and nodes behind its rows, and the interface that
// answers metadata functions (upid_to_pod_name, ip_to_pod_id, ctx['pod']).
// The Kubernetes source (sources/k8s) implements it on a cluster; Host
// implements it on a plain Linux host.
package metadata

import "github.com/pxq-dev/pxq/types"

// Provider answers metadata lookups. Every method returns nil when the
// entity is unknown; implementations must be safe for concurrent use and
// cheap per call (the executor calls them once per distinct value in a
// batch, not per row).
type Provider interface {
	// Process describes the process of a UPID.
	Process(upid types.UInt128Value) *Process
	// Pod looks a pod up by UID.
	Pod(uid string) *Pod
	// PodByName looks a pod up by "namespace/name".
	PodByName(nsName string) *Pod
	// PodByIP returns the pod that held ip at time t (ns; 0 = now).
	PodByIP(ip string, t int64) *Pod
	// Service looks a service up by UID.
	Service(uid string) *Service
	// ServiceByName looks a service up by "namespace/name".
	ServiceByName(nsName string) *Service
	// ServiceByIP returns the service with cluster IP ip.
	ServiceByIP(ip string) *Service
	// Hostname is the name of the node this provider describes.
	Hostname() string
}

// Process is what is known of one process.
type Process struct {
	UPID          types.UInt128Value
	PID           int64
	StartNS       int64 // ns since the epoch
	Cmdline       string
	ContainerID   string
	ContainerName string
	PodUID        string // "" when not in a pod
	Hostname      string
}

// Pod is what is known of one pod. Names are "namespace/name" in the
// fields that say so, as PxL scripts expect.
type Pod struct {
	UID            string
	Name           string // bare name
	Namespace      string
	NodeName       string
	Hostname       string
	IP             string
	StartNS        int64
	StopNS         int64 // 0 while running
	Phase          string
	StatusJSON     string
	LabelsJSON     string
	QOSClass       string
	ServiceUIDs    []string
	ServiceNames   []string // "namespace/name"
	ReplicaSetUID  string
	ReplicaSetName string // "namespace/name"
	DeploymentUID  string
	DeploymentName string // "namespace/name"
	OwnerRefsJSON  string
	ContainerIDs   []string
}

// QualifiedName returns "namespace/name".
func (p *Pod) QualifiedName() string { return p.Namespace + "/" + p.Name }

// Service is what is known of one service.
type Service struct {
	UID         string
	Name        string
	Namespace   string
	ClusterIP   string
	ExternalIPs []string
	StartNS     int64
	StopNS      int64
}

// QualifiedName returns "namespace/name".
func (s *Service) QualifiedName() string { return s.Namespace + "/" + s.Name }
