package k8s

import (
	"context"
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
	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
)

// fixture creates API objects the way the controllers and kubelet that
// are not running would: it sets node names and pod status itself.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	ns     string
}

func newContainerID(t *testing.T) string { return k8stest.ContainerID(t) }

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
	p, err = k8stest.MarkRunning(f.ctx, f.client, p, ip, cid)
	f.check(err, "update status of pod "+name)
	return p
}

// newFixture makes the namespace ns of a test's objects in c.
func newFixture(t *testing.T, c *k8stest.Cluster, ns string) (*fixture, *corev1.Namespace) {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), client: c.Client, ns: ns}
	n, err := f.client.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	f.check(err, "create namespace")
	return f, n
}

// node creates a node, with a hostname and an internal IP address in its
// status when hostname is not "".
func (f *fixture) node(name, hostname, ip string) *corev1.Node {
	f.t.Helper()
	n, err := f.client.CoreV1().Nodes().Create(f.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	f.check(err, "create node")
	if hostname == "" {
		return n
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: hostname}, {Type: corev1.NodeInternalIP, Address: ip}}
	n, err = f.client.CoreV1().Nodes().UpdateStatus(f.ctx, n, metav1.UpdateOptions{})
	f.check(err, "update node status")
	return n
}

// deployment creates deployment name of replicas pods labelled labels,
// and the replica set rs it owns, as the deployment controller would.
func (f *fixture) deployment(name, rs string, replicas int32, labels map[string]string) (*appsv1.Deployment, *appsv1.ReplicaSet) {
	f.t.Helper()
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/" + name + ":1"}}},
	}
	selector := &metav1.LabelSelector{MatchLabels: labels}
	d, err := f.client.AppsV1().Deployments(f.ns).Create(f.ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: selector, Template: template},
	}, metav1.CreateOptions{})
	f.check(err, "create deployment")
	ctrl := true
	r, err := f.client.AppsV1().ReplicaSets(f.ns).Create(f.ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: rs, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: &ctrl}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: selector, Template: template},
	}, metav1.CreateOptions{})
	f.check(err, "create replica set")
	return d, r
}

// service creates service name, port 80 to the pods labelled labels'
// 8080, and its endpoint slice (named slice) of pod, ready at ip.
func (f *fixture) service(name, slice string, labels map[string]string, pod *corev1.Pod, ip string) *corev1.Service {
	f.t.Helper()
	svc, err := f.client.CoreV1().Services(f.ns).Create(f.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	f.check(err, "create service")
	port, proto, ready := int32(8080), corev1.ProtocolTCP, true
	_, err = f.client.DiscoveryV1().EndpointSlices(f.ns).Create(f.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: slice, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: f.ns, Name: pod.Name, UID: pod.UID},
		}},
		Ports: []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
	}, metav1.CreateOptions{})
	f.check(err, "create endpoint slice")
	return svc
}

func (f *fixture) deletePod(name string) {
	f.t.Helper()
	zero := int64(0)
	err := f.client.CoreV1().Pods(f.ns).Delete(f.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	f.check(err, "delete pod "+name)
}

// startWatch starts a store fed by the test API server.
func startWatch(t *testing.T, c *k8stest.Cluster) *Store {
	t.Helper()
	store := NewStore(StoreConfig{Hostname: "test-host"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w, err := Watch(ctx, c.Client, store)
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
	f, ns := newFixture(t, c, "pxq-watch")
	node := f.node("node-watch-1", "host-watch-1", "192.168.50.10")
	labels := map[string]string{"app": "web"}
	dep, rs := f.deployment("web", "web-7d9f", 2, labels)

	const ip = "10.244.1.7"
	cid1 := newContainerID(t)
	pod1 := f.runningPod("web-7d9f-aaaaa", node.Name, ip, cid1, rs, labels)
	svc := f.service("web", "web-abcde", labels, pod1, ip)

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
	f.check(c.Client.CoreV1().Services(f.ns).Delete(f.ctx, "web", metav1.DeleteOptions{}), "delete service")
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
