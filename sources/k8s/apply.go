package k8s

import (
	"encoding/json"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxq-dev/pxq/metadata"
)

// This file turns API objects into metadata values. Every Apply*/Delete*
// method takes the store's lock; informer handlers call them, and so may
// tests and benchmarks that feed a store directly.

func nsName(ns, name string) string { return ns + "/" + name }

func unixNano(t *metav1.Time) int64 {
	if t == nil || t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

type ownerRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	UID  string `json:"uid"`
}

func ownersJSON(refs []metav1.OwnerReference) string {
	out := make([]ownerRef, len(refs))
	for i, r := range refs {
		out[i] = ownerRef{r.Kind, r.Name, string(r.UID)}
	}
	return toJSON(out)
}

func ownerOfKind(refs []metav1.OwnerReference, kind string) (uid, name string) {
	for _, r := range refs {
		if r.Kind == kind {
			return string(r.UID), r.Name
		}
	}
	return "", ""
}

// ApplyPod records a pod as added or updated.
func (s *Store) ApplyPod(k *corev1.Pod) { s.putPod(k, false) }

// DeletePod records that a pod is gone.
func (s *Store) DeletePod(k *corev1.Pod) { s.putPod(k, true) }

func (s *Store) putPod(k *corev1.Pod, deleted bool) {
	now := s.now().UnixNano()
	uid := string(k.UID)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.pods.Get(uid)

	p := &metadata.Pod{
		UID:           uid,
		Name:          k.Name,
		Namespace:     k.Namespace,
		NodeName:      k.Spec.NodeName,
		Hostname:      k.Spec.Hostname,
		IP:            k.Status.PodIP,
		StartNS:       unixNano(k.Status.StartTime),
		Phase:         string(k.Status.Phase),
		LabelsJSON:    toJSON(k.Labels),
		QOSClass:      string(k.Status.QOSClass),
		OwnerRefsJSON: ownersJSON(k.OwnerReferences),
	}
	if p.Hostname == "" {
		p.Hostname = k.Name
	}
	if created := k.CreationTimestamp.UnixNano(); p.StartNS == 0 || (created != 0 && created < p.StartNS) {
		p.StartNS = created
	}
	ready := false
	for _, c := range k.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	p.StatusJSON = toJSON(struct {
		Phase   string `json:"phase"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Ready   bool   `json:"ready"`
	}{string(k.Status.Phase), k.Status.Message, k.Status.Reason, ready})

	// A pod stops when it is deleted or its phase is final.
	switch {
	case had && old.StopNS != 0:
		p.StopNS = old.StopNS
	case deleted:
		p.StopNS = now
	case k.Status.Phase == corev1.PodSucceeded || k.Status.Phase == corev1.PodFailed:
		p.StopNS = lastFinish(k)
		if p.StopNS == 0 {
			p.StopNS = now
		}
	}

	if rsUID, rsName := ownerOfKind(k.OwnerReferences, "ReplicaSet"); rsUID != "" {
		p.ReplicaSetUID, p.ReplicaSetName = rsUID, nsName(k.Namespace, rsName)
		if rs, ok := s.replicaSets.Get(rsUID); ok {
			p.DeploymentUID, p.DeploymentName = rs.DeploymentUID, rs.DeploymentName
		}
		if s.rsPods[rsUID] == nil {
			s.rsPods[rsUID] = make(map[string]bool)
		}
		s.rsPods[rsUID][uid] = true
	}
	var oldSvc *metadata.Pod
	if had {
		oldSvc = old
	}
	p.ServiceNames, p.ServiceUIDs = s.podServicesLocked(uid, p.StopNS != 0, oldSvc)

	// Containers.
	statuses := slices.Concat(k.Status.InitContainerStatuses, k.Status.ContainerStatuses, k.Status.EphemeralContainerStatuses)
	for _, cs := range statuses {
		id := containerID(cs.ContainerID)
		if id == "" {
			continue
		}
		p.ContainerIDs = append(p.ContainerIDs, id)
		s.putContainerLocked(uid, cs, id, p.StopNS)
	}
	if had {
		for _, id := range old.ContainerIDs {
			if !slices.Contains(p.ContainerIDs, id) {
				s.stopContainerLocked(id, now)
			}
		}
	}

	// IP leases. Pods on the host network share the node's IP: no lease.
	ips := make([]string, 0, 2)
	for _, ip := range k.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && k.Status.PodIP != "" {
		ips = append(ips, k.Status.PodIP)
	}
	if !k.Spec.HostNetwork {
		for _, ip := range ips {
			s.leaseLocked(ip, uid, p.StartNS, p.StopNS, now)
		}
	}
	if p.StopNS != 0 {
		if had && old.IP != "" && !slices.Contains(ips, old.IP) {
			ips = append(ips, old.IP)
		}
		for _, ip := range ips {
			s.closeLeaseLocked(ip, uid, p.StopNS)
		}
	}
	s.pods.Put(p)
}

// lastFinish is when the last container of a finished pod stopped.
func lastFinish(k *corev1.Pod) int64 {
	var last int64
	for _, cs := range k.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			last = max(last, unixNano(&t.FinishedAt))
		}
	}
	return last
}

// containerID strips the runtime scheme ("containerd://") off a
// container status's id.
func containerID(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		return s[i+3:]
	}
	return s
}

func (s *Store) putContainerLocked(podUID string, cs corev1.ContainerStatus, id string, podStop int64) {
	c := &metadata.Container{ID: id, Name: cs.Name, PodUID: podUID, State: "Unknown"}
	var msg, reason string
	switch st := cs.State; {
	case st.Running != nil:
		c.State = "Running"
		c.StartNS = unixNano(&st.Running.StartedAt)
	case st.Terminated != nil:
		c.State = "Terminated"
		c.StartNS = unixNano(&st.Terminated.StartedAt)
		c.StopNS = unixNano(&st.Terminated.FinishedAt)
		msg, reason = st.Terminated.Message, st.Terminated.Reason
	case st.Waiting != nil:
		c.State = "Waiting"
		msg, reason = st.Waiting.Message, st.Waiting.Reason
	}
	if old, ok := s.containers.Get(id); ok {
		if c.StartNS == 0 {
			c.StartNS = old.StartNS
		}
		if c.StopNS == 0 {
			c.StopNS = old.StopNS
		}
	}
	if c.StopNS == 0 {
		c.StopNS = podStop
	}
	c.StatusJSON = toJSON(struct {
		State   string `json:"state"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	}{c.State, msg, reason})
	s.containers.Put(c)
}

func (s *Store) stopContainerLocked(id string, at int64) {
	old, ok := s.containers.Get(id)
	if !ok || old.StopNS != 0 {
		return
	}
	c := *old
	c.StopNS = at
	s.containers.Put(&c)
}

// leaseLocked records that pod uid holds ip, from start. An open lease
// of another pod on the same IP ends now: its delete was missed or has
// not arrived yet. A lease never starts before the previous one ended.
func (s *Store) leaseLocked(ip, uid string, start, stop, now int64) {
	ls := s.leases[ip]
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].PodUID == uid {
			return // already leased (its stop is handled by closeLeaseLocked)
		}
	}
	ls = slices.Clone(ls) // readers may hold the old slice
	for i := range ls {
		if ls[i].StopNS == 0 {
			ls[i].StopNS = now
		}
	}
	if n := len(ls); n > 0 && start < ls[n-1].StopNS {
		start = ls[n-1].StopNS
	}
	s.leases[ip] = append(ls, metadata.IPLease{PodUID: uid, StartNS: start, StopNS: stop})
}

func (s *Store) closeLeaseLocked(ip, uid string, stop int64) {
	ls := s.leases[ip]
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i].PodUID == uid {
			if ls[i].StopNS == 0 {
				ls = slices.Clone(ls)
				ls[i].StopNS = stop
				s.leases[ip] = ls
			}
			return
		}
	}
}

// podServicesLocked computes a pod's services from the endpoint sets that
// list it. A stopped pod keeps the services it had: its endpoints go away
// once it is gone, but the past still belongs to them.
func (s *Store) podServicesLocked(uid string, stopped bool, old *metadata.Pod) (names, uids []string) {
	set := map[string]bool{}
	for key := range s.podSets[uid] {
		set[s.endpoints[key].service] = true
	}
	if stopped && old != nil {
		for _, n := range old.ServiceNames {
			set[n] = true
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	names = sortedKeys(set)
	for _, n := range names {
		if v, ok := s.services.Named(n); ok {
			uids = append(uids, v.UID)
		} else if old != nil {
			// Keep a UID learned earlier for a service now forgotten.
			if i := slices.Index(old.ServiceNames, n); i >= 0 && i < len(old.ServiceUIDs) {
				uids = append(uids, old.ServiceUIDs[i])
			}
		}
	}
	return names, uids
}

// refreshPodServicesLocked recomputes the services of pod uid.
func (s *Store) refreshPodServicesLocked(uid string) {
	old, ok := s.pods.Get(uid)
	if !ok {
		return
	}
	names, uids := s.podServicesLocked(uid, old.StopNS != 0, old)
	if slices.Equal(names, old.ServiceNames) && slices.Equal(uids, old.ServiceUIDs) {
		return
	}
	p := *old
	p.ServiceNames, p.ServiceUIDs = names, uids
	s.pods.Put(&p)
}

// putEndpointsLocked replaces (or, with set.service == "", removes) one
// endpoint set and refreshes the pods it lists or listed.
func (s *Store) putEndpointsLocked(key string, set endpointSet) {
	affected := map[string]bool{}
	for _, uid := range s.endpoints[key].pods {
		affected[uid] = true
		delete(s.podSets[uid], key)
	}
	if set.service == "" {
		delete(s.endpoints, key)
	} else {
		s.endpoints[key] = set
		for _, uid := range set.pods {
			affected[uid] = true
			if s.podSets[uid] == nil {
				s.podSets[uid] = make(map[string]bool)
			}
			s.podSets[uid][key] = true
		}
	}
	for uid := range affected {
		if len(s.podSets[uid]) == 0 {
			delete(s.podSets, uid)
		}
		s.refreshPodServicesLocked(uid)
	}
}

// targetPod resolves an endpoint's target reference to a pod UID.
func (s *Store) targetPodLocked(ref *corev1.ObjectReference, ns string) string {
	if ref == nil || ref.Kind != "Pod" {
		return ""
	}
	if ref.UID != "" {
		return string(ref.UID)
	}
	if ref.Namespace != "" {
		ns = ref.Namespace
	}
	if p, ok := s.pods.Named(nsName(ns, ref.Name)); ok {
		return p.UID
	}
	return ""
}

// ApplyEndpointSlice records an endpoint slice as added or updated.
func (s *Store) ApplyEndpointSlice(k *discoveryv1.EndpointSlice) {
	svc := k.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set := endpointSet{service: nsName(k.Namespace, svc)}
	for _, ep := range k.Endpoints {
		if uid := s.targetPodLocked(ep.TargetRef, k.Namespace); uid != "" {
			set.pods = append(set.pods, uid)
		}
	}
	s.putEndpointsLocked("slice/"+nsName(k.Namespace, k.Name), set)
}

// DeleteEndpointSlice records that an endpoint slice is gone.
func (s *Store) DeleteEndpointSlice(k *discoveryv1.EndpointSlice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putEndpointsLocked("slice/"+nsName(k.Namespace, k.Name), endpointSet{})
}

// ApplyEndpoints records an Endpoints object as added or updated.
func (s *Store) ApplyEndpoints(k *corev1.Endpoints) { //nolint:staticcheck // still served, and some clusters mirror only these
	s.mu.Lock()
	defer s.mu.Unlock()
	set := endpointSet{service: nsName(k.Namespace, k.Name)}
	for _, sub := range k.Subsets {
		for _, a := range slices.Concat(sub.Addresses, sub.NotReadyAddresses) {
			if uid := s.targetPodLocked(a.TargetRef, k.Namespace); uid != "" {
				set.pods = append(set.pods, uid)
			}
		}
	}
	s.putEndpointsLocked("endpoints/"+nsName(k.Namespace, k.Name), set)
}

// DeleteEndpoints records that an Endpoints object is gone.
func (s *Store) DeleteEndpoints(k *corev1.Endpoints) { //nolint:staticcheck
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putEndpointsLocked("endpoints/"+nsName(k.Namespace, k.Name), endpointSet{})
}

// ApplyService records a service as added or updated.
func (s *Store) ApplyService(k *corev1.Service) { s.putService(k, false) }

// DeleteService records that a service is gone.
func (s *Store) DeleteService(k *corev1.Service) { s.putService(k, true) }

func (s *Store) putService(k *corev1.Service, deleted bool) {
	now := s.now().UnixNano()
	uid := string(k.UID)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &metadata.Service{
		UID:         uid,
		Name:        k.Name,
		Namespace:   k.Namespace,
		ClusterIP:   k.Spec.ClusterIP,
		ExternalIPs: slices.Clone(k.Spec.ExternalIPs),
		StartNS:     k.CreationTimestamp.UnixNano(),
	}
	for _, ing := range k.Status.LoadBalancer.Ingress {
		if ing.IP != "" && !slices.Contains(v.ExternalIPs, ing.IP) {
			v.ExternalIPs = append(v.ExternalIPs, ing.IP)
		}
	}
	if old, ok := s.services.Get(uid); ok && old.StopNS != 0 {
		v.StopNS = old.StopNS
	} else if deleted {
		v.StopNS = now
	}
	for ip, owner := range s.clusterIPs {
		if owner == uid {
			delete(s.clusterIPs, ip)
		}
	}
	if v.StopNS == 0 {
		ips := k.Spec.ClusterIPs
		if len(ips) == 0 {
			ips = []string{k.Spec.ClusterIP}
		}
		for _, ip := range ips {
			if ip != "" && ip != corev1.ClusterIPNone {
				s.clusterIPs[ip] = uid
			}
		}
	}
	s.services.Put(v)
	// Pods of the service learn its UID.
	name := v.QualifiedName()
	for _, set := range s.endpoints {
		if set.service == name {
			for _, p := range set.pods {
				s.refreshPodServicesLocked(p)
			}
		}
	}
}

// ApplyReplicaSet records a replica set as added or updated.
func (s *Store) ApplyReplicaSet(k *appsv1.ReplicaSet) { s.putReplicaSet(k, false) }

// DeleteReplicaSet records that a replica set is gone.
func (s *Store) DeleteReplicaSet(k *appsv1.ReplicaSet) { s.putReplicaSet(k, true) }

func (s *Store) putReplicaSet(k *appsv1.ReplicaSet, deleted bool) {
	now := s.now().UnixNano()
	uid := string(k.UID)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &metadata.ReplicaSet{
		UID:           uid,
		Name:          k.Name,
		Namespace:     k.Namespace,
		StartNS:       k.CreationTimestamp.UnixNano(),
		OwnerRefsJSON: ownersJSON(k.OwnerReferences),
	}
	var requested int32
	if k.Spec.Replicas != nil {
		requested = *k.Spec.Replicas
	}
	v.StatusJSON = toJSON(struct {
		Replicas             int32 `json:"replicas"`
		FullyLabeledReplicas int32 `json:"fully_labeled_replicas"`
		ReadyReplicas        int32 `json:"ready_replicas"`
		AvailableReplicas    int32 `json:"available_replicas"`
		ObservedGeneration   int64 `json:"observed_generation"`
		RequestedReplicas    int32 `json:"requested_replicas"`
	}{k.Status.Replicas, k.Status.FullyLabeledReplicas, k.Status.ReadyReplicas, k.Status.AvailableReplicas, k.Status.ObservedGeneration, requested})
	if dUID, dName := ownerOfKind(k.OwnerReferences, "Deployment"); dUID != "" {
		v.DeploymentUID, v.DeploymentName = dUID, nsName(k.Namespace, dName)
	}
	if old, ok := s.replicaSets.Get(uid); ok && old.StopNS != 0 {
		v.StopNS = old.StopNS
	} else if deleted {
		v.StopNS = now
	}
	s.replicaSets.Put(v)
	for puid := range s.rsPods[uid] {
		old, ok := s.pods.Get(puid)
		if !ok || (old.DeploymentUID == v.DeploymentUID && old.DeploymentName == v.DeploymentName) {
			continue
		}
		p := *old
		p.DeploymentUID, p.DeploymentName = v.DeploymentUID, v.DeploymentName
		s.pods.Put(&p)
	}
}

// ApplyDeployment records a deployment as added or updated.
func (s *Store) ApplyDeployment(k *appsv1.Deployment) { s.putDeployment(k, false) }

// DeleteDeployment records that a deployment is gone.
func (s *Store) DeleteDeployment(k *appsv1.Deployment) { s.putDeployment(k, true) }

func (s *Store) putDeployment(k *appsv1.Deployment, deleted bool) {
	now := s.now().UnixNano()
	uid := string(k.UID)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &metadata.Deployment{
		UID:       uid,
		Name:      k.Name,
		Namespace: k.Namespace,
		StartNS:   k.CreationTimestamp.UnixNano(),
	}
	type condition struct {
		Type   string `json:"type"`
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
	}
	conds := make([]condition, len(k.Status.Conditions))
	for i, c := range k.Status.Conditions {
		conds[i] = condition{string(c.Type), string(c.Status), c.Reason}
	}
	var requested int32
	if k.Spec.Replicas != nil {
		requested = *k.Spec.Replicas
	}
	v.StatusJSON = toJSON(struct {
		ObservedGeneration  int64       `json:"observed_generation"`
		Replicas            int32       `json:"replicas"`
		UpdatedReplicas     int32       `json:"updated_replicas"`
		ReadyReplicas       int32       `json:"ready_replicas"`
		AvailableReplicas   int32       `json:"available_replicas"`
		UnavailableReplicas int32       `json:"unavailable_replicas"`
		RequestedReplicas   int32       `json:"requested_replicas"`
		Conditions          []condition `json:"conditions"`
	}{k.Status.ObservedGeneration, k.Status.Replicas, k.Status.UpdatedReplicas, k.Status.ReadyReplicas,
		k.Status.AvailableReplicas, k.Status.UnavailableReplicas, requested, conds})
	if old, ok := s.deployments.Get(uid); ok && old.StopNS != 0 {
		v.StopNS = old.StopNS
	} else if deleted {
		v.StopNS = now
	}
	s.deployments.Put(v)
}

// ApplyNamespace records a namespace as added or updated.
func (s *Store) ApplyNamespace(k *corev1.Namespace) { s.putNamespace(k, false) }

// DeleteNamespace records that a namespace is gone.
func (s *Store) DeleteNamespace(k *corev1.Namespace) { s.putNamespace(k, true) }

func (s *Store) putNamespace(k *corev1.Namespace, deleted bool) {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &metadata.Namespace{UID: string(k.UID), Name: k.Name, StartNS: k.CreationTimestamp.UnixNano()}
	if old, ok := s.namespaces.Get(v.UID); ok && old.StopNS != 0 {
		v.StopNS = old.StopNS
	} else if deleted {
		v.StopNS = now
	}
	s.namespaces.Put(v)
}

// ApplyNode records a node as added or updated.
func (s *Store) ApplyNode(k *corev1.Node) { s.putNode(k, false) }

// DeleteNode records that a node is gone.
func (s *Store) DeleteNode(k *corev1.Node) { s.putNode(k, true) }

func (s *Store) putNode(k *corev1.Node, deleted bool) {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := &metadata.Node{UID: string(k.UID), Name: k.Name, StartNS: k.CreationTimestamp.UnixNano()}
	for _, a := range k.Status.Addresses {
		switch a.Type {
		case corev1.NodeHostName:
			v.Hostname = a.Address
		case corev1.NodeInternalIP:
			if v.InternalIP == "" {
				v.InternalIP = a.Address
			}
		}
	}
	if v.Hostname == "" {
		v.Hostname = k.Name
	}
	if old, ok := s.nodes.Get(v.UID); ok && old.StopNS != 0 {
		v.StopNS = old.StopNS
	} else if deleted {
		v.StopNS = now
	}
	s.nodes.Put(v)
}
