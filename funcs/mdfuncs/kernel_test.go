package mdfuncs

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/k8s"
	"github.com/pxq-dev/pxq/types"
)

// cluster is a small cluster's metadata: a k8s.Store fed the API objects
// that its informers would deliver, and processes observed in its pods.
type cluster struct {
	store *k8s.Store
	t0    time.Time // creation time of everything
}

func hexID(n int) string { return fmt.Sprintf("%064x", n) }
func uid(kind string, n int) ktypes.UID {
	return ktypes.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", n, map[string]int{"pod": 1, "svc": 2, "rs": 3, "dep": 4, "ns": 5}[kind]))
}

func podObj(ns, name string, n int, ip string, t0 time.Time, rs *appsv1.ReplicaSet) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid("pod", n), CreationTimestamp: metav1.NewTime(t0),
			Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, QOSClass: corev1.PodQOSBurstable,
			StartTime: &metav1.Time{Time: t0},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", ContainerID: "containerd://" + hexID(n),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}}},
		},
	}
	if rs != nil {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID}}
	}
	return p
}

func svcObj(ns, name string, n int, clusterIP string, t0 time.Time) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid("svc", n), CreationTimestamp: metav1.NewTime(t0)},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}},
	}
}

func sliceObj(ns, svc string, pods ...*corev1.Pod) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
	for _, p := range pods {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.Status.PodIP},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}})
	}
	return s
}

// process observes a process of container n and returns its UPID.
func (c *cluster) process(n int) types.UInt128Value {
	u := types.UPID(0, uint32(1<<30+n), uint64(n)*10_000_000)
	c.store.Processes().Observe(metadata.Process{UPID: u, Cmdline: fmt.Sprintf("server --id=%d", n), ContainerID: hexID(n)})
	return u
}

// smallCluster: namespace shop; deployment web → replica set web-1 → pods
// web-a (10.0.1.1, services web and all), web-b (10.0.1.2, service web);
// a pod old-x that held 10.0.1.9 and was deleted, after which pod new-y
// got the IP.
func smallCluster(t *testing.T) (*cluster, map[string]types.UInt128Value, int64) {
	t0 := time.Now().Add(-time.Hour)
	now := t0
	clock := func() time.Time { return now }
	c := &cluster{store: k8s.NewStore(k8s.StoreConfig{Hostname: "host-1", Now: clock}), t0: t0}
	s := c.store
	s.ApplyNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: uid("ns", 1), CreationTimestamp: metav1.NewTime(t0)}})
	s.ApplyDeployment(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: uid("dep", 1), CreationTimestamp: metav1.NewTime(t0)}})
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: uid("rs", 1), CreationTimestamp: metav1.NewTime(t0),
		OwnerReferences: []metav1.OwnerReference{{Kind: "Deployment", Name: "web", UID: uid("dep", 1)}}}}
	a := podObj("shop", "web-a", 1, "10.0.1.1", t0, rs)
	b := podObj("shop", "web-b", 2, "10.0.1.2", t0, rs)
	s.ApplyPod(a) // before its replica set: the deployment must follow
	s.ApplyReplicaSet(rs)
	s.ApplyPod(b)
	s.ApplyService(svcObj("shop", "web", 1, "10.96.0.10", t0))
	s.ApplyService(svcObj("shop", "all", 2, "10.96.0.11", t0))
	s.ApplyEndpointSlice(sliceObj("shop", "web", a, b))
	s.ApplyEndpointSlice(sliceObj("shop", "all", a))

	old := podObj("shop", "old-x", 3, "10.0.1.9", t0, nil)
	s.ApplyPod(old)
	now = t0.Add(10 * time.Minute)
	s.DeletePod(old)
	now = t0.Add(20 * time.Minute)
	s.ApplyPod(podObj("shop", "new-y", 4, "10.0.1.9", now, nil))
	now = time.Now()

	upids := map[string]types.UInt128Value{"web-a": c.process(1), "web-b": c.process(2), "old-x": c.process(3)}
	return c, upids, t0.Add(5 * time.Minute).UnixNano()
}

func strArray(mem memory.Allocator, ss ...string) *array.String {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.AppendValues(ss, nil)
	return b.NewStringArray()
}

func timeArray(mem memory.Allocator, ts ...int64) *array.Timestamp {
	b := array.NewTimestampBuilder(mem, types.TimeType)
	defer b.Release()
	for _, t := range ts {
		b.Append(arrow.Timestamp(t))
	}
	return b.NewTimestampArray()
}

func TestKernels(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	c, up, early := smallCluster(t)
	ctx := &funcs.Context{Mem: mem, Meta: c.store}
	unknown := types.UPID(0, 1<<30+999, 1)

	upids := upidArray(mem, up["web-a"], up["web-b"], up["web-a"], unknown, up["old-x"])
	defer upids.Release()
	uA, uB, uOld := string(uid("pod", 1)), string(uid("pod", 2)), string(uid("pod", 3))
	podIDs := strArray(mem, uA, uB, "nope", uOld)
	defer podIDs.Release()
	podNames := strArray(mem, "shop/web-a", "shop/old-x", "shop/none")
	defer podNames.Release()
	ips := strArray(mem, "10.0.1.1", "10.0.1.9", "10.0.1.9", "10.96.0.10", "1.2.3.4")
	defer ips.Release()

	svcA := `["shop/all","shop/web"]`
	svcAIDs := fmt.Sprintf(`["%s","%s"]`, uid("svc", 2), uid("svc", 1))
	cases := []struct {
		fn   string
		arg  arrow.Array
		want []string
	}{
		{"upid_to_pod_name", upids, []string{"shop/web-a", "shop/web-b", "shop/web-a", "", "shop/old-x"}},
		{"upid_to_pod_id", upids, []string{uA, uB, uA, "", uOld}},
		{"upid_to_namespace", upids, []string{"shop", "shop", "shop", "", "shop"}},
		{"upid_to_node_name", upids, []string{"node-1", "node-1", "node-1", "", "node-1"}},
		{"upid_to_service_name", upids, []string{svcA, "shop/web", svcA, "", ""}},
		{"upid_to_service_id", upids, []string{svcAIDs, string(uid("svc", 1)), svcAIDs, "", ""}},
		{"upid_to_container_name", upids, []string{"main", "main", "main", "", "main"}},
		{"upid_to_container_id", upids, []string{hexID(1), hexID(2), hexID(1), "", hexID(3)}},
		{"upid_to_cmdline", upids, []string{"server --id=1", "server --id=2", "server --id=1", "", "server --id=3"}},
		{"upid_to_hostname", upids, []string{"host-1", "host-1", "host-1", "", "host-1"}},
		{"upid_to_replicaset_name", upids, []string{"shop/web-1", "shop/web-1", "shop/web-1", "", ""}},
		{"upid_to_deployment_name", upids, []string{"shop/web", "shop/web", "shop/web", "", ""}},
		{"upid_to_deployment_id", upids, []string{string(uid("dep", 1)), string(uid("dep", 1)), string(uid("dep", 1)), "", ""}},
		{"upid_to_pod_qos", upids, []string{"Burstable", "Burstable", "Burstable", "", "Burstable"}},
		{"pod_id_to_pod_name", podIDs, []string{"shop/web-a", "shop/web-b", "", "shop/old-x"}},
		{"pod_id_to_namespace", podIDs, []string{"shop", "shop", "", "shop"}},
		{"pod_id_to_service_name", podIDs, []string{svcA, "shop/web", "", ""}},
		{"pod_id_to_replicaset_id", podIDs, []string{string(uid("rs", 1)), string(uid("rs", 1)), "", ""}},
		{"pod_id_to_pod_labels", podIDs, []string{`{"app":"web-a"}`, `{"app":"web-b"}`, "", `{"app":"old-x"}`}},
		{"pod_name_to_pod_id", podNames, []string{uA, uOld, ""}},
		{"pod_name_to_pod_ip", podNames, []string{"10.0.1.1", "10.0.1.9", ""}},
		{"pod_name_to_status", podNames, []string{`{"phase":"Running","message":"","reason":"","ready":false}`, `{"phase":"Running","message":"","reason":"","ready":false}`, ""}},
		{"ip_to_pod_id", ips, []string{uA, string(uid("pod", 4)), string(uid("pod", 4)), "", ""}},
		{"ip_to_service_id", ips, []string{svcAIDs, "", "", string(uid("svc", 1)), ""}},
	}
	for _, tc := range cases {
		v := call(t, ctx, tc.fn, funcs.Value{Array: tc.arg})
		if got := strs(t, v); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s =\n %q\nwant\n %q", tc.fn, got, tc.want)
		}
		v.Array.Release()
	}

	// ip_to_pod_id(ip, time): the deleted pod at its time, the new one now.
	times := timeArray(mem, early, early, time.Now().UnixNano(), early, early)
	defer times.Release()
	v := call(t, ctx, "ip_to_pod_id", funcs.Value{Array: ips}, funcs.Value{Array: times})
	if got := strs(t, v); strings.Join(got, "|") != strings.Join([]string{uA, uOld, string(uid("pod", 4)), "", ""}, "|") {
		t.Errorf("ip_to_pod_id(ip, time) = %q", got)
	}
	v.Array.Release()
	if v := call(t, ctx, "ip_to_pod_id", funcs.Value{Const: "10.0.1.9"}, funcs.Value{Const: early}); v.Const != uOld {
		t.Errorf("constant ip_to_pod_id(ip, time) = %v", v.Const)
	}

	// Times.
	v = call(t, ctx, "pod_name_to_stop_time", funcs.Value{Array: podNames})
	ts := v.Array.(*array.Timestamp)
	if ts.Value(0) != 0 || int64(ts.Value(1)) != c.t0.Add(10*time.Minute).UnixNano() || ts.Value(2) != 0 {
		t.Errorf("pod_name_to_stop_time = %v", ts)
	}
	v.Array.Release()

	// Constants in, constants out; other entity kinds.
	consts := []struct{ fn, arg, want string }{
		{"service_id_to_service_name", string(uid("svc", 1)), "shop/web"},
		{"service_id_to_cluster_ip", string(uid("svc", 2)), "10.96.0.11"},
		{"service_id_to_external_ips", string(uid("svc", 2)), "[]"},
		{"service_name_to_service_id", "shop/all", string(uid("svc", 2))},
		{"service_name_to_namespace", "shop/all", "shop"},
		{"replicaset_id_to_replicaset_name", string(uid("rs", 1)), "shop/web-1"},
		{"replicaset_name_to_deployment_name", "shop/web-1", "shop/web"},
		{"deployment_id_to_deployment_name", string(uid("dep", 1)), "shop/web"},
		{"deployment_name_to_deployment_id", "shop/web", string(uid("dep", 1))},
		{"namespace_name_to_namespace_id", "shop", string(uid("ns", 1))},
		{"container_id_to_status", hexID(2), `{"state":"Running","message":"","reason":""}`},
		{"container_name_to_container_id", "nope", ""},
		{"pod_name_to_namespace", "shop/web-b", "shop"},
		{"pod_id_to_node_name", uB, "node-1"},
		{"upid_to_pod_name", "", ""}, // replaced below
	}
	for _, tc := range consts[:len(consts)-1] {
		if v := call(t, ctx, tc.fn, funcs.Value{Const: tc.arg}); v.Const != tc.want {
			t.Errorf("%s(%q) = %v, want %q", tc.fn, tc.arg, v.Const, tc.want)
		}
	}
	if v := call(t, ctx, "upid_to_pod_name", funcs.Value{Const: up["web-b"]}); v.Const != "shop/web-b" {
		t.Errorf("constant upid_to_pod_name = %v", v.Const)
	}
	if v := call(t, ctx, "container_id_to_start_time", funcs.Value{Const: hexID(1)}); v.Const != c.t0.UnixNano() {
		t.Errorf("container_id_to_start_time = %v", v.Const)
	}
}

// counting counts the lookups a kernel makes.
type counting struct {
	metadata.Provider
	process, pod atomic.Int64
}

func (c *counting) Process(u types.UInt128Value) *metadata.Process {
	c.process.Add(1)
	return c.Provider.Process(u)
}

func (c *counting) Pod(uid string) *metadata.Pod {
	c.pod.Add(1)
	return c.Provider.Pod(uid)
}

// TestDistinctOnce checks that a batch resolves each distinct value once.
func TestDistinctOnce(t *testing.T) {
	c, up, _ := smallCluster(t)
	m := &counting{Provider: c.store}
	ctx := &funcs.Context{Mem: memory.DefaultAllocator, Meta: m}
	rows := make([]types.UInt128Value, 0, 3000)
	for i := 0; i < 1000; i++ {
		rows = append(rows, up["web-a"], up["web-b"], up["old-x"])
	}
	arr := upidArray(memory.DefaultAllocator, rows...)
	defer arr.Release()
	v := call(t, ctx, "upid_to_pod_name", funcs.Value{Array: arr})
	defer v.Array.Release()
	if v.Array.Len() != 3000 || m.process.Load() != 3 || m.pod.Load() != 3 {
		t.Fatalf("%d rows took %d process and %d pod lookups, want 3 each", v.Array.Len(), m.process.Load(), m.pod.Load())
	}
}
