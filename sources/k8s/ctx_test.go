package k8s

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/funcs/mdfuncs"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// TestCtxKeysAgainstAPIServer compiles df.ctx[key] for every key the
// metadata functions declare and runs it over a row of a real process in
// a kubelet-named cgroup of a pod owned by a ReplicaSet of a Deployment,
// behind a Service, in a real API server: every key answers, and the
// Kubernetes ones name those objects.
func TestCtxKeysAgainstAPIServer(t *testing.T) {
	v2, _ := needCgroups(t)
	c := cluster(t)
	store := startWatch(t, c)
	f := &fixture{t: t, ctx: context.Background(), client: c.client, ns: "pxq-ctx"}
	_, err := c.client.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{})
	f.check(err, "create namespace")
	node, err := c.client.CoreV1().Nodes().Create(f.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-ctx-1"}}, metav1.CreateOptions{})
	f.check(err, "create node")

	labels := map[string]string{"app": "shop"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/shop:1"}}},
	}
	one, ctrl := int32(1), true
	dep, err := c.client.AppsV1().Deployments(f.ns).Create(f.ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec:       appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	f.check(err, "create deployment")
	rs, err := c.client.AppsV1().ReplicaSets(f.ns).Create(f.ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-5c8d", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &ctrl}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	f.check(err, "create replica set")
	const ip = "10.244.3.9"
	cid := newContainerID(t)
	pod := f.runningPod("shop-5c8d-xxxxx", node.Name, ip, cid, rs, labels)
	svc, err := c.client.CoreV1().Services(f.ns).Create(f.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	f.check(err, "create service")
	port, proto, ready := int32(8080), corev1.ProtocolTCP, true
	_, err = c.client.DiscoveryV1().EndpointSlices(f.ns).Create(f.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "shop-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "shop"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: f.ns, Name: pod.Name, UID: pod.UID}}},
		Ports: []discoveryv1.EndpointPort{{Port: &port, Protocol: &proto}},
	}, metav1.CreateOptions{})
	f.check(err, "create endpoint slice")
	eventually(t, "pod with service and deployment", func() bool {
		p := store.PodByName(f.ns + "/" + pod.Name)
		return p != nil && len(p.ServiceUIDs) == 1 && p.DeploymentUID != "" && store.Container(cid) != nil
	})

	uid := strings.ReplaceAll(string(pod.UID), "-", "_")
	upid := inCgroup(t, v2, fmt.Sprintf("pxqtest-kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope", uid, cid))

	eng, err := engine.New(engine.Config{Meta: store, MaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	rel := types.Relation{{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS}, {Name: "upid", Type: types.UInt128, Semantic: types.STUPID}}
	tb, err := eng.Store().Create("ctx_rows", rel, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Append(upidRecord(rel, time.Now().UnixNano(), upid)); err != nil {
		t.Fatal(err)
	}

	keys := mdfuncs.CtxKeys("upid")
	var src strings.Builder
	src.WriteString("import px\ndf = px.DataFrame(table='ctx_rows', start_time='-10m')\n")
	for i, k := range keys {
		fmt.Fprintf(&src, "df.k%d = df.ctx['%s']\n", i, k)
	}
	src.WriteString("px.display(df.drop(['time_', 'upid']), 'ctx')\n")
	res, err := eng.Collect(context.Background(), engine.Query{Script: &scripts.Script{Name: "ctx", Path: "ctx.pxl", PXL: []byte(src.String())}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Rows() != 1 {
		t.Fatalf("want one row, got %v", res)
	}
	got := map[string]string{}
	rec := res[0].Records[0]
	for i, k := range keys {
		got[k] = fmt.Sprint(format.Value(rec.Column(i), 0))
	}
	want := map[string]string{
		"pod": f.ns + "/" + pod.Name, "pod_id": string(pod.UID), "namespace": f.ns, "node": node.Name,
		"service": f.ns + "/shop", "service_id": string(svc.UID), "container": "app", "container_id": cid,
		"deployment": f.ns + "/shop", "deployment_id": string(dep.UID), "replicaset": f.ns + "/shop-5c8d",
		"replicaset_id": string(rs.UID), "cmdline": "sleep 300", "pid": fmt.Sprint(upid.PID()),
	}
	for _, k := range keys {
		if got[k] == "" {
			t.Errorf("ctx[%q] is empty", k)
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("ctx[%q] = %q, want %q", k, got[k], w)
		}
	}
}

// upidRecord is one row of (time_, upid).
func upidRecord(rel types.Relation, ts int64, upid types.UInt128Value) arrow.Record {
	mem := memory.DefaultAllocator
	tsb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond})
	tsb.Append(arrow.Timestamp(ts))
	ub := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 16})
	b := make([]byte, 16)
	types.PutUInt128(b, upid)
	ub.Append(b)
	return array.NewRecord(rel.ArrowSchema(), []arrow.Array{tsb.NewArray(), ub.NewArray()}, 1)
}
