package metadata

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
)

// Kinds of host entity: what plays the role of a pod for a process on a
// plain host.
const (
	EntityContainer = "container" // a docker, podman, containerd or CRI-O container
	EntityUnit      = "unit"      // a systemd service: nginx.service
	EntityProcess   = "process"   // an executable outside any unit or container
	EntityHost      = "host"      // the host itself: the owner of its local addresses
)

// HostNamespace is the namespace of the entities that belong to no slice
// and no compose project, and of the host itself.
const HostNamespace = "host"

// HostEntity is what a process belongs to on a host without Kubernetes.
// Host names it as a pod "Namespace/Name" on node Process.Hostname, in
// service "Namespace/Service" when Service is set.
type HostEntity struct {
	Kind        string
	Namespace   string
	Name        string
	Service     string // bare service name, "" when none
	ContainerID string // for a container
}

// QualifiedName returns "namespace/name", the entity's pod name.
func (e HostEntity) QualifiedName() string { return e.Namespace + "/" + e.Name }

// EntityOf names the entity of a process from what the process records,
// and nothing else, so that a capture's processes name the same entities
// when it is replayed:
//
//   - in a container (ContainerID): the container, named ContainerName
//     (the runtime's name) or else the first 12 digits of its id, in the
//     namespace of its compose project (LabelsJSON) and its compose
//     service, else in the top-level slice of its cgroup, else in "host";
//   - else in a systemd service (the deepest unit of its Cgroup path is a
//     *.service): the unit, in the top-level slice ("system.slice",
//     "user.slice"; "host" outside any), in a service of the same name;
//   - else the executable's name (argv[0] without its folder), in the
//     top-level slice or "host". That includes processes in a scope
//     (a login session, a terminal tab, systemd-run --scope): a scope
//     gathers whatever a user started, which is no one application.
//
// ok is false for a process with no command line (a kernel thread) and
// for nil.
func EntityOf(p *Process) (e HostEntity, ok bool) {
	if p == nil {
		return HostEntity{}, false
	}
	if p.ContainerID != "" {
		e = HostEntity{Kind: EntityContainer, Namespace: topSlice(p.Cgroup), Name: p.ContainerName, ContainerID: p.ContainerID}
		if e.Name == "" {
			e.Name = shortID(p.ContainerID)
		}
		if project, service := composeOf(p.LabelsJSON); project != "" {
			e.Namespace, e.Service = project, service
		}
		return e, true
	}
	if unit := unitOf(p.Cgroup); strings.HasSuffix(unit, ".service") {
		return HostEntity{Kind: EntityUnit, Namespace: topSlice(p.Cgroup), Name: unit, Service: unit}, true
	}
	if exe := exeName(p.Cmdline); exe != "" {
		return HostEntity{Kind: EntityProcess, Namespace: topSlice(p.Cgroup), Name: exe}, true
	}
	return HostEntity{}, false
}

// hostEntity is the host itself, named after it.
func hostEntity(hostname string) HostEntity {
	return HostEntity{Kind: EntityHost, Namespace: HostNamespace, Name: hostname}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// topSlice returns the first segment of a cgroup path when it is a slice,
// else HostNamespace.
func topSlice(cgroup string) string {
	for _, seg := range strings.Split(cgroup, "/") {
		if seg == "" || seg == ".." {
			continue
		}
		if strings.HasSuffix(seg, ".slice") {
			return seg
		}
		break
	}
	return HostNamespace
}

// unitOf returns the deepest segment of a cgroup path that is a unit
// holding processes (a service or a scope), "" when none is: a scope
// inside a service (user@1000.service/app.slice/x.scope) is the scope.
func unitOf(cgroup string) string {
	segs := strings.Split(cgroup, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		if s := segs[i]; strings.HasSuffix(s, ".service") || strings.HasSuffix(s, ".scope") {
			return s
		}
	}
	return ""
}

// exeName returns the executable's name from a command line: argv[0]
// without its folder, without the "-" of a login shell and the ":" that
// processes renaming themselves add ("nginx: worker process").
func exeName(cmdline string) string {
	arg0, _, _ := strings.Cut(cmdline, " ")
	name := strings.TrimSuffix(strings.TrimPrefix(path.Base(arg0), "-"), ":")
	if name == "." || name == "/" {
		return ""
	}
	return name
}

// composeOf reads a compose project and service from a LabelsJSON.
func composeOf(labelsJSON string) (project, service string) {
	if labelsJSON == "" {
		return "", ""
	}
	var l map[string]string
	if json.Unmarshal([]byte(labelsJSON), &l) != nil {
		return "", ""
	}
	return l[LabelComposeProject], l[LabelComposeService]
}

// uidSpace makes entity UIDs unlike any other name-based UUID.
var uidSpace = [16]byte{0xb0, 0x93, 0x4c, 0x0d, 0x11, 0x97, 0x6f, 0xfb, 0x07, 0x26, 0xa9, 0x38, 0x17, 0xa6, 0x84, 0xbe}

// EntityUID is the UID of a synthesized entity of a kind ("pod",
// "service", "namespace", "node"): a name-based (version 5) UUID of the
// kind, the host (for pods: the same unit on two hosts is two pods) and
// the name, so that an entity has the same UID in every run and in a
// capture's replay.
func EntityUID(kind, host, name string) string {
	h := sha1.New()
	h.Write(uidSpace[:])
	h.Write([]byte(kind + "\x00" + host + "\x00" + name))
	var b [16]byte
	copy(b[:], h.Sum(nil))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Values of the synthesized entities: running as long as they are known.
const (
	entityPodStatus       = `{"phase":"Running","message":"","reason":"","ready":true}`
	entityContainerStatus = `{"state":"Running","message":"","reason":""}`
)

// hostIndex holds the pods, services, containers, namespaces and nodes
// synthesized for host entities. An entity starts with the earliest
// process seen in it and never stops: a host keeps no record of when the
// last process of a unit exited. Not safe for concurrent use: its owner's
// lock guards it.
type hostIndex struct {
	pods       History[*Pod]
	services   History[*Service]
	containers History[*Container]
	namespaces History[*Namespace]
	nodes      History[*Node]
	npods      int
}

// add records the entity of p (on host when p names no hostname) and
// returns its pod's UID, "" when p has no entity.
func (x *hostIndex) add(p *Process, host string) string {
	e, ok := EntityOf(p)
	if !ok {
		return ""
	}
	if p.Hostname != "" {
		host = p.Hostname
	}
	return x.put(e, host, p.StartNS, p.LabelsJSON)
}

// put records entity e of host with a process started at start.
func (x *hostIndex) put(e HostEntity, host string, start int64, labelsJSON string) string {
	uid := EntityUID("pod", host, e.QualifiedName())
	if old, ok := x.pods.Get(uid); ok {
		// An earlier process, or another container of the same name (a
		// container made again): a new value, as values handed out are
		// never modified.
		newCtr := e.ContainerID != "" && !slices.Contains(old.ContainerIDs, e.ContainerID)
		if earlier(start, old.StartNS) || newCtr {
			cp := *old
			if earlier(start, old.StartNS) {
				cp.StartNS = start
			}
			if newCtr {
				cp.ContainerIDs = append(slices.Clip(old.ContainerIDs), e.ContainerID)
			}
			x.pods.Put(&cp)
		}
	} else {
		x.npods++
		if labelsJSON == "" {
			labelsJSON = "{}"
		}
		pod := &Pod{
			UID:           uid,
			Name:          e.Name,
			Namespace:     e.Namespace,
			NodeName:      host,
			Hostname:      host,
			StartNS:       start,
			Phase:         "Running",
			StatusJSON:    entityPodStatus,
			LabelsJSON:    labelsJSON,
			OwnerRefsJSON: "[]",
		}
		if e.Service != "" {
			pod.ServiceUIDs = []string{EntityUID("service", "", e.Namespace+"/"+e.Service)}
			pod.ServiceNames = []string{e.Namespace + "/" + e.Service}
		}
		if e.ContainerID != "" {
			pod.ContainerIDs = []string{e.ContainerID}
		}
		x.pods.Put(pod)
	}
	if e.ContainerID != "" {
		if c, ok := x.containers.Get(e.ContainerID); !ok || earlier(start, c.StartNS) {
			x.containers.Put(&Container{ID: e.ContainerID, Name: e.Name, PodUID: uid, State: "Running",
				StatusJSON: entityContainerStatus, StartNS: start})
		}
	}
	if e.Service != "" {
		suid := EntityUID("service", "", e.Namespace+"/"+e.Service)
		if s, ok := x.services.Get(suid); !ok || earlier(start, s.StartNS) {
			x.services.Put(&Service{UID: suid, Name: e.Service, Namespace: e.Namespace, StartNS: start})
		}
	}
	nsUID := EntityUID("namespace", "", e.Namespace)
	if n, ok := x.namespaces.Get(nsUID); !ok || earlier(start, n.StartNS) {
		x.namespaces.Put(&Namespace{UID: nsUID, Name: e.Namespace, StartNS: start})
	}
	x.node(host, start, "")
	return uid
}

// node records the node host, started by start, with its address ip
// (kept when "").
func (x *hostIndex) node(host string, start int64, ip string) {
	uid := EntityUID("node", "", host)
	n, ok := x.nodes.Get(uid)
	if ok && !earlier(start, n.StartNS) && (ip == "" || ip == n.InternalIP) {
		return
	}
	nn := &Node{UID: uid, Name: host, Hostname: host, InternalIP: ip, StartNS: start}
	if ok {
		if !earlier(start, n.StartNS) {
			nn.StartNS = n.StartNS
		}
		if ip == "" {
			nn.InternalIP = n.InternalIP
		}
	}
	x.nodes.Put(nn)
}

// earlier reports whether a start time improves on the one known.
func earlier(start, known int64) bool {
	return start != 0 && (known == 0 || start < known)
}

// WithHostEntities returns a host-mode snapshot completed with the host
// entities its processes belong to, as the Host that took it named them:
// each process's PodUID, and the pods, services, containers, namespaces
// and node that the snapshot does not already hold, with the loopback
// addresses (127.0.0.1 and ::1) leased to the host itself. NewReplay of
// the result answers every lookup a live Host answers for those
// processes. Since EntityOf needs only what a Process records, this also
// names the processes of captures written before host entities existed.
// Other snapshots are returned as they are; s is not modified.
func WithHostEntities(s *Snapshot) *Snapshot {
	if s == nil || s.Mode != ModeHost {
		return s
	}
	out := *s
	var x hostIndex
	hostPod := ""
	if s.Hostname != "" {
		hostPod = x.put(hostEntity(s.Hostname), s.Hostname, 0, "")
	}
	out.Processes = make([]*Process, len(s.Processes))
	for i, p := range s.Processes {
		cp := *p
		cp.PodUID = x.add(&cp, s.Hostname)
		out.Processes[i] = &cp
	}
	const lo, hi = math.MinInt64, math.MaxInt64
	out.Pods = appendMissing(s.Pods, x.pods.During(lo, hi))
	out.Services = appendMissing(s.Services, x.services.During(lo, hi))
	out.Containers = appendMissing(s.Containers, x.containers.During(lo, hi))
	out.Namespaces = appendMissing(s.Namespaces, x.namespaces.During(lo, hi))
	out.Nodes = appendMissing(s.Nodes, x.nodes.During(lo, hi))
	out.PodIPs = make(map[string][]IPLease, len(s.PodIPs)+2)
	for ip, l := range s.PodIPs {
		out.PodIPs[ip] = l
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if _, ok := out.PodIPs[ip]; !ok && hostPod != "" {
			out.PodIPs[ip] = []IPLease{{PodUID: hostPod}}
		}
	}
	return &out
}

// appendMissing appends to have (copied) the entities of add whose UID it
// lacks.
func appendMissing[T Entity](have, add []T) []T {
	known := make(map[string]bool, len(have))
	for _, v := range have {
		uid, _ := v.key()
		known[uid] = true
	}
	out := append([]T(nil), have...)
	for _, v := range add {
		if uid, _ := v.key(); !known[uid] {
			out = append(out, v)
		}
	}
	return out
}
