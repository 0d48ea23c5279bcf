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
	f, _ := newFixture(t, c, "pxq-ctx")
	node := f.node("node-ctx-1", "", "")
	labels := map[string]string{"app": "shop"}
	dep, rs := f.deployment("shop", "shop-5c8d", 1, labels)
	const ip = "10.244.3.9"
	cid := newContainerID(t)
	pod := f.runningPod("shop-5c8d-xxxxx", node.Name, ip, cid, rs, labels)
	svc := f.service("shop", "shop-abcde", labels, pod, ip)
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
