package k8s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/pxq-dev/pxq/metadata"
)

// fixture creates API objects the way the controllers and kubelet that
// are not running would: it sets node names and pod status itself.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	ns     string
}

func newContainerID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (f *fixture) check(err error, what string) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: %v", what, err)
	}
}

// runningPod creates a pod on node owned by rs (may be nil) and gives it
// a running status with ip and one container "app" of id cid.
func (f *fixture) runningPod(name, node, ip, cid string, rs *appsv1.ReplicaSet, labels map[string]string) *corev1.Pod {
	f.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
		},
	}
	if rs != nil {
		ctrl := true
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &ctrl}}
	}
	p, err := f.client.CoreV1().Pods(f.ns).Create(f.ctx, p, metav1.CreateOptions{})
	f.check(err, "create pod "+name)
	now := metav1.Now()
	p.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "192.168.50.10",
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		StartTime: &now,
		QOSClass:  p.Status.QOSClass,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:        "app",
			ContainerID: "containerd://" + cid,
			Image:       "registry.invalid/app:1",
			ImageID:     "registry.invalid/app@sha256:" + cid,
			Ready:       true,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	p, err = f.client.CoreV1().Pods(f.ns).UpdateStatus(f.ctx, p, metav1.UpdateOptions{})
	f.check(err, "update status of pod "+name)
	return p
}

func (f *fixture) deletePod(name string) {
	f.t.Helper()
	zero := int64(0)
	err := f.client.CoreV1().Pods(f.ns).Delete(f.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	f.check(err, "delete pod "+name)
}

// startWatch starts a store fed by the test API server.
func startWatch(t *testing.T, c *testCluster) *Store {
	t.Helper()
	store := NewStore(StoreConfig{Hostname: "test-host"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := Watch(ctx, c.client, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return store
}

// TestWatchAgainstAPIServer drives a real kube-apiserver: namespaces,
// nodes, a deployment with its replica set, pods with status, a service
// and its endpoint slice, deletes, and an IP handed to a new pod.
func TestWatchAgainstAPIServer(t *testing.T) {
	c := cluster(t)
	store := startWatch(t, c)
	f := &fixture{t: t, ctx: context.Background(), client: c.client, ns: "pxq-watch"}

	ns, err := c.client.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{})
	f.check(err, "create namespace")
	node, err := c.client.CoreV1().Nodes().Create(f.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-watch-1"}}, metav1.CreateOptions{})
	f.check(err, "create node")
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "host-watch-1"}, {Type: corev1.NodeInternalIP, Address: "192.168.50.10"}}
	_, err = c.client.CoreV1().Nodes().UpdateStatus(f.ctx, node, metav1.UpdateOptions{})
	f.check(err, "update node status")

	labels := map[string]string{"app": "web"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
	}
	replicas := int32(2)
	dep, err := c.client.AppsV1().Deployments(f.ns).Create(f.ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	f.check(err, "create deployment")
	ctrl := true
	rs, err := c.client.AppsV1().ReplicaSets(f.ns).Create(f.ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-7d9f", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &ctrl}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	f.check(err, "create replica set")

	const ip = "10.244.1.7"
	cid1 := newContainerID(t)
	pod1 := f.runningPod("web-7d9f-aaaaa", node.Name, ip, cid1, rs, labels)

	svc, err := c.client.CoreV1().Services(f.ns).Create(f.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	f.check(err, "create service")
	port, proto, ready := int32(8080), corev1.ProtocolTCP, true
	_, err = c.client.DiscoveryV1().EndpointSlices(f.ns).Create(f.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: f.ns, Name: pod1.Name, UID: pod1.UID},
		}},
		Ports: []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
	}, metav1.CreateOptions{})
	f.check(err, "create endpoint slice")

	podName := f.ns + "/" + pod1.Name
	eventually(t, "pod with status, service and deployment", func() bool {
		p := store.PodByName(podName)
		return p != nil && p.IP == ip && len(p.ServiceUIDs) == 1 && p.DeploymentUID != "" && len(p.ContainerIDs) == 1
	})
	p := store.PodByName(podName)
	want := metadata.Pod{
		UID: string(pod1.UID), Name: pod1.Name, Namespace: f.ns, NodeName: node.Name, IP: ip, Phase: "Running",
		QOSClass: "BestEffort", ServiceNames: []string{f.ns + "/web"}, ServiceUIDs: []string{string(svc.UID)},
		ReplicaSetUID: string(rs.UID), ReplicaSetName: f.ns + "/web-7d9f", DeploymentUID: string(dep.UID), DeploymentName: f.ns + "/web",
		ContainerIDs: []string{cid1},
	}
	if p.UID != want.UID || p.Name != want.Name || p.Namespace != want.Namespace || p.NodeName != want.NodeName || p.IP != want.IP ||
		p.Phase != want.Phase || p.QOSClass != want.QOSClass || !slices.Equal(p.ServiceNames, want.ServiceNames) ||
		!slices.Equal(p.ServiceUIDs, want.ServiceUIDs) || p.ReplicaSetUID != want.ReplicaSetUID || p.ReplicaSetName != want.ReplicaSetName ||
		p.DeploymentUID != want.DeploymentUID || p.DeploymentName != want.DeploymentName || !slices.Equal(p.ContainerIDs, want.ContainerIDs) {
		t.Fatalf("pod =\n%+v\nwant\n%+v", *p, want)
	}
	if p.StatusJSON != `{"phase":"Running","message":"","reason":"","ready":true}` || p.LabelsJSON != `{"app":"web"}` || p.StopNS != 0 {
		t.Errorf("pod status %s labels %s stop %d", p.StatusJSON, p.LabelsJSON, p.StopNS)
	}
	if got := store.PodByIP(ip, 0); got == nil || got.UID != string(pod1.UID) {
		t.Errorf("PodByIP(%s) = %+v", ip, got)
	}
	if got := store.ServiceByIP(svc.Spec.ClusterIP); got == nil || got.UID != string(svc.UID) || got.QualifiedName() != f.ns+"/web" {
		t.Errorf("ServiceByIP(%s) = %+v", svc.Spec.ClusterIP, got)
	}
	if got := store.ServiceByName(f.ns + "/web"); got == nil || got.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("ServiceByName = %+v", got)
	}
	if got := store.Container(cid1); got == nil || got.Name != "app" || got.PodUID != string(pod1.UID) || got.State != "Running" {
		t.Errorf("Container = %+v", got)
	}
	if got := store.ReplicaSetByName(f.ns + "/web-7d9f"); got == nil || got.DeploymentName != f.ns+"/web" {
		t.Errorf("ReplicaSetByName = %+v", got)
	}
	if got := store.DeploymentByName(f.ns + "/web"); got == nil || got.UID != string(dep.UID) {
		t.Errorf("DeploymentByName = %+v", got)
	}
	if got := store.Namespace(f.ns); got == nil || got.UID != string(ns.UID) {
		t.Errorf("Namespace = %+v", got)
	}
	eventually(t, "node status", func() bool { n := store.Node(node.Name); return n != nil && n.Hostname == "host-watch-1" })

	// The pod dies; its IP goes to a new pod. The past keeps the old one.
	time.Sleep(20 * time.Millisecond)
	before := time.Now().UnixNano()
	time.Sleep(20 * time.Millisecond)
	f.deletePod(pod1.Name)
	eventually(t, "pod stop", func() bool { p := store.Pod(string(pod1.UID)); return p != nil && p.StopNS != 0 })
	time.Sleep(20 * time.Millisecond)
	cid2 := newContainerID(t)
	pod2 := f.runningPod("web-7d9f-bbbbb", node.Name, ip, cid2, rs, labels)
	eventually(t, "new pod on the IP", func() bool { p := store.PodByIP(ip, 0); return p != nil && p.UID == string(pod2.UID) })
	after := time.Now().UnixNano()

	if got := store.PodByIP(ip, before); got == nil || got.UID != string(pod1.UID) {
		t.Errorf("PodByIP(%s, before delete) = %+v, want the deleted pod", ip, got)
	}
	if got := store.PodByIP(ip, after); got == nil || got.UID != string(pod2.UID) {
		t.Errorf("PodByIP(%s, now) = %+v, want the new pod", ip, got)
	}
	old := store.PodByName(podName)
	if old == nil || old.StopNS == 0 || old.StopNS < before || !slices.Equal(old.ServiceNames, []string{f.ns + "/web"}) {
		t.Errorf("deleted pod by name = %+v", old)
	}
	if c := store.Container(cid1); c == nil || c.StopNS == 0 {
		t.Errorf("container of the deleted pod = %+v", c)
	}
	hist := store.IPHistory(ip)
	if len(hist) != 2 || hist[0].StopNS == 0 || hist[1].StartNS < hist[0].StopNS {
		t.Errorf("IPHistory = %+v", hist)
	}

	// The service goes away; pods keep naming it for the past.
	f.check(c.client.CoreV1().Services(f.ns).Delete(f.ctx, "web", metav1.DeleteOptions{}), "delete service")
	eventually(t, "service stop", func() bool { s := store.Service(string(svc.UID)); return s != nil && s.StopNS != 0 })
	if got := store.ServiceByIP(svc.Spec.ClusterIP); got != nil {
		t.Errorf("deleted service still owns its cluster IP: %+v", got)
	}

	// Retention: once the window has passed, the dead are forgotten.
	store.pruneBefore(time.Now().UnixNano())
	if store.Pod(string(pod1.UID)) != nil || store.Service(string(svc.UID)) != nil {
		t.Error("Prune kept expired objects")
	}
	if got := store.PodByIP(ip, 0); got == nil || got.UID != string(pod2.UID) {
		t.Errorf("Prune dropped the live pod: %+v", got)
	}
}
