package cluster_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
)

// app is one Deployment of the node: one pod, one container "app"
// running program, and a Service unless service is "".
type app struct {
	ns, name, program, service string
	port                       int32
	protocol                   corev1.Protocol
}

// shopApps are the node's workloads: the shop in namespace shop, and the
// cluster's DNS in kube-system.
var shopApps = []app{
	{ns: "kube-system", name: "coredns", program: "dns", service: "kube-dns", port: 53, protocol: corev1.ProtocolUDP},
	{ns: "shop", name: "frontend", program: "frontend", service: "frontend", port: 80, protocol: corev1.ProtocolTCP},
	{ns: "shop", name: "catalog", program: "catalog", service: "catalog", port: 80, protocol: corev1.ProtocolTCP},
	{ns: "shop", name: "checkout", program: "checkout", service: "checkout", port: 80, protocol: corev1.ProtocolTCP},
	{ns: "shop", name: "payments", program: "payments", service: "payments", port: 80, protocol: corev1.ProtocolTCP},
	{ns: "shop", name: "loadgen", program: "loadgen"},
}

// pod is a running pod of the node: its objects and its process.
type pod struct {
	app
	pod     *corev1.Pod
	ip      string
	netns   string
	cmd     *exec.Cmd
	stdin   io.Writer
	stdout  *bufio.Scanner
	service *corev1.Service
}

// Name is the pod's namespace/name, as ctx['pod'] gives it.
func (p *pod) Name() string { return p.ns + "/" + p.pod.Name }

// Service is the pod's service's namespace/name, or "".
func (p *pod) Service() string {
	if p.service == nil {
		return ""
	}
	return p.ns + "/" + p.service.Name
}

// send writes a command to the program and returns its answer line.
func (p *pod) send(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.stdin, cmd); err != nil {
		t.Fatalf("%s: %s: %v", p.name, cmd, err)
	}
	if !p.stdout.Scan() {
		t.Fatalf("%s: %s: no answer (%v)", p.name, cmd, p.stdout.Err())
	}
	return p.stdout.Text()
}

// counts asks the program for its counts, resetting them when reset.
func (p *pod) counts(t *testing.T, reset bool) counts {
	t.Helper()
	cmd := "counts"
	if reset {
		cmd = "reset"
	}
	var c counts
	if err := json.Unmarshal([]byte(p.send(t, cmd)), &c); err != nil {
		t.Fatalf("%s: counts: %v", p.name, err)
	}
	return c
}

// node is the one-node cluster: the API server and the pods of shopApps,
// on a bridge of the host.
type node struct {
	cluster  *k8stest.Cluster
	name     string // the node's name: the hostname, as pxq assumes
	tag      string // makes link, namespace and cgroup names unique
	subnet   string // the pods' /24, "10.x.y."
	pods     []*pod
	byName   map[string]*pod // by app name
	byIP     map[string]*pod
	dnsIP    string
	bridgeIP string
}

// startNode makes the cluster's objects, the bridge and the pods, and
// starts their programs; everything is removed when the test ends.
func startNode(t *testing.T, c *k8stest.Cluster) *node {
	v2, _ := k8stest.Cgroups(t)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	n := &node{cluster: c, name: host, tag: hex.EncodeToString(b[:2]), byName: map[string]*pod{}, byIP: map[string]*pod{}}
	// A /24 of 10.0.0.0/8 away from the API server's service range.
	n.subnet = fmt.Sprintf("10.%d.%d.", 100+int(b[0])%100, b[1])
	n.bridgeIP = n.subnet + "1"
	ctx := context.Background()
	client := c.Client

	bridge := "pxqbr" + n.tag
	ipCmd(t, "link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	ipCmd(t, "addr", "add", n.bridgeIP+"/24", "dev", bridge)
	ipCmd(t, "link", "set", bridge, "up")

	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: host}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, a := range shopApps {
		p := &pod{app: a, ip: fmt.Sprintf("%s%d", n.subnet, 10+i)}
		p.pod, p.service = createApp(t, client, a, host, p.ip)
		n.pods = append(n.pods, p)
		n.byName[a.name] = p
		n.byIP[p.ip] = p
	}
	n.dnsIP = n.byName["coredns"].ip
	var zone []string
	for _, p := range n.pods {
		if p.service != nil {
			zone = append(zone, fmt.Sprintf("%s.%s.svc.cluster.local=%s", p.service.Name, p.ns, p.ip))
		}
	}
	for i, p := range n.pods {
		// The pod's network: a namespace with the pod IP on a veth of
		// the bridge.
		p.netns = fmt.Sprintf("pxq%s-%s", n.tag, p.name)
		veth := fmt.Sprintf("pxq%sv%d", n.tag, i)
		ipCmd(t, "netns", "add", p.netns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", p.netns).Run() })
		ipCmd(t, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", p.netns)
		ipCmd(t, "link", "set", veth, "master", bridge, "up")
		ipCmd(t, "-n", p.netns, "addr", "add", p.ip+"/24", "dev", "eth0")
		ipCmd(t, "-n", p.netns, "link", "set", "eth0", "up")
		ipCmd(t, "-n", p.netns, "link", "set", "lo", "up")
		ipCmd(t, "-n", p.netns, "route", "add", "default", "via", n.bridgeIP)

		// The container: this test binary as the pod's program, born in
		// the cgroup kubelet would give the container.
		cid := strings.TrimPrefix(p.pod.Status.ContainerStatuses[0].ContainerID, "containerd://")
		cg := filepath.Join(v2, k8stest.KubeletCgroup(string(p.pod.UID), cid))
		if err := os.MkdirAll(cg, 0o755); err != nil {
			t.Fatal(err)
		}
		cgfd, err := os.Open(cg)
		if err != nil {
			t.Fatal(err)
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", p.netns, self)
		cmd.Env = append(os.Environ(), roleEnv+"="+p.program, dnsEnv+"="+n.dnsIP+":53", zoneEnv+"="+strings.Join(zone, ","))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgfd.Fd()), Pdeathsig: syscall.SIGKILL}
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", p.name, err)
		}
		cgfd.Close()
		p.cmd = cmd
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			// The container's cgroup and the pod's, deepest first.
			for d := cg; strings.HasPrefix(d, v2+"/") && os.Remove(d) == nil; d = filepath.Dir(d) {
			}
		})
		p.stdout = bufio.NewScanner(out)
		p.stdout.Buffer(nil, 1<<20)
		if !p.stdout.Scan() || p.stdout.Text() != "ready" {
			t.Fatalf("%s did not start: %q %v", p.name, p.stdout.Text(), p.stdout.Err())
		}
	}
	return n
}

// ipCmd runs ip with args.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// createApp makes the objects of a: a Deployment, its ReplicaSet, a
// running pod on node with ip, a Service with a ClusterIP and its
// EndpointSlice, as the controllers and kubelet would.
func createApp(t *testing.T, client kubernetes.Interface, a app, node, ip string) (*corev1.Pod, *corev1.Service) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": a.name}
	one := int32(1)
	spec := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/" + a.name + ":1"}}},
	}
	dep, err := client.AppsV1().Deployments(a.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: a.ns, Labels: labels},
		Spec:       appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: spec},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("deployment %s: %v", a.name, err)
	}
	yes := true
	hash := "7d9f8c6b5"
	rsLabels := map[string]string{"app": a.name, "pod-template-hash": hash}
	rs, err := client.AppsV1().ReplicaSets(a.ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: a.name + "-" + hash, Namespace: a.ns, Labels: rsLabels, OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: rsLabels}, Spec: spec.Spec}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("replicaset %s: %v", a.name, err)
	}
	podOwner := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}
	p, err := client.CoreV1().Pods(a.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: rs.Name + "-x4k2q", Namespace: a.ns, Labels: rsLabels, OwnerReferences: podOwner},
		Spec:       corev1.PodSpec{NodeName: node, Containers: spec.Spec.Containers},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("pod %s: %v", a.name, err)
	}
	var cid [32]byte
	rand.Read(cid[:])
	if p, err = k8stest.MarkRunning(ctx, client, p, ip, hex.EncodeToString(cid[:])); err != nil {
		t.Fatalf("pod %s status: %v", a.name, err)
	}
	if a.service == "" {
		return p, nil
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: a.service, Namespace: a.ns},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{
			Name: "app", Port: a.port, Protocol: a.protocol, TargetPort: intstr.FromInt32(int32(appPortOf(a)))}}},
	}
	if a.service == "kube-dns" {
		svc.Spec.ClusterIP = "10.0.0.10"
	}
	if svc, err = client.CoreV1().Services(a.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("service %s: %v", a.service, err)
	}
	port := int32(appPortOf(a))
	proto := a.protocol
	name := "app"
	ready := true
	_, err = client.DiscoveryV1().EndpointSlices(a.ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: a.service + "-abcde", Namespace: a.ns, Labels: map[string]string{discoveryv1.LabelServiceName: a.service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			NodeName:   &node,
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: a.ns, Name: p.Name, UID: p.UID},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("endpointslice %s: %v", a.service, err)
	}
	return p, svc
}

// appPortOf is the port a's program listens on.
func appPortOf(a app) int {
	if a.program == "dns" {
		return 53
	}
	return appPort
}

// waitFor polls f until it returns true or d passes.
func waitFor(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
	return true
}
