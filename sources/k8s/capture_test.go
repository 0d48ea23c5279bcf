package k8s

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// captureRow is one row of the test's table: a process talking to an IP.
type captureRow struct {
	ts   int64
	upid types.UInt128Value
	ip   string
}

var captureRel = types.Relation{
	{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS},
	{Name: "upid", Type: types.UInt128, Semantic: types.STUPID},
	{Name: "remote_addr", Type: types.String, Semantic: types.STIPAddress},
}

func captureRecord(rows []captureRow) arrow.Record {
	mem := memory.DefaultAllocator
	tb := array.NewTimestampBuilder(mem, types.TimeType)
	ub := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 16})
	sb := array.NewStringBuilder(mem)
	for _, r := range rows {
		tb.Append(arrow.Timestamp(r.ts))
		ub.Append(r.upid.Bytes())
		sb.Append(r.ip)
	}
	return array.NewRecord(captureRel.ArrowSchema(), []arrow.Array{tb.NewArray(), ub.NewArray(), sb.NewArray()}, int64(len(rows)))
}

// captureScript asks every Kubernetes ctx key of each row's process, and
// who held its remote IP at the row's time and at the end.
var captureScript = `
import px
df = px.DataFrame(table='capture_rows', start_time='-10m')
` + plantest.CtxColumns("pod", "pod_id", "service", "namespace", "node", "container", "deployment", "replicaset", "cmdline") +
	`df.remote_pod = px.pod_id_to_pod_name(px.ip_to_pod_id(df.remote_addr, df.time_))
df.remote_pod_last = px.pod_id_to_pod_name(px.ip_to_pod_id(df.remote_addr))
df.remote_service = px.service_id_to_service_name(px.ip_to_service_id(df.remote_addr))
df.remote_node = px.pod_id_to_node_name(px.ip_to_pod_id(df.remote_addr, df.time_))
df.ns_id = px.namespace_name_to_namespace_id(df.namespace)
px.display(df, 'rows')
`

// runCaptureScript runs captureScript on eng as of now and returns its
// rows, rendered and sorted, and the columns by name of each row.
func runCaptureScript(t *testing.T, eng *engine.Engine, now time.Time) ([]string, []map[string]string) {
	t.Helper()
	s := &scripts.Script{Name: "capture", Path: "capture.pxl", PXL: []byte(captureScript)}
	res, err := eng.Collect(context.Background(), engine.Query{Script: s, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var rows []map[string]string
	for _, tb := range res {
		for _, rec := range tb.Records {
			for i := 0; i < int(rec.NumRows()); i++ {
				row := map[string]string{}
				var cells []string
				for c, col := range tb.Relation {
					v := fmt.Sprint(format.Value(rec.Column(c), i))
					row[col.Name] = v
					cells = append(cells, col.Name+"="+v)
				}
				rows = append(rows, row)
				lines = append(lines, strings.Join(cells, " "))
			}
		}
	}
	sort.Strings(lines)
	return lines, rows
}

// lookups are the provider answers a capture must keep, by question.
func lookups(p metadata.Provider, upids []types.UInt128Value, ips []string, times []int64, names map[string][]string) map[string]any {
	out := map[string]any{}
	for _, u := range upids {
		out["process "+u.String()] = p.Process(u)
	}
	for _, ip := range ips {
		out["ip history "+ip] = p.IPHistory(ip)
		out["service ip "+ip] = p.ServiceByIP(ip)
		for _, t := range append(times, 0) {
			out[fmt.Sprintf("pod ip %s at %d", ip, t)] = p.PodByIP(ip, t)
		}
	}
	byName := map[string]func(string) any{
		"pod":        func(n string) any { return p.PodByName(n) },
		"service":    func(n string) any { return p.ServiceByName(n) },
		"replicaset": func(n string) any { return p.ReplicaSetByName(n) },
		"deployment": func(n string) any { return p.DeploymentByName(n) },
		"namespace":  func(n string) any { return p.Namespace(n) },
		"node":       func(n string) any { return p.Node(n) },
		"container":  func(n string) any { return p.Container(n) },
	}
	for kind, lookup := range byName {
		for _, n := range names[kind] {
			out[kind+" "+n] = lookup(n)
		}
	}
	for _, k := range []string{"pod", "service", "namespace", "node"} {
		out["names "+k] = p.(interface{ Names(string) []string }).Names(k)
	}
	out["hostname"] = p.Hostname()
	return out
}

// TestCaptureKeepsMetadata records rows of real processes in the cgroups
// of pods of a real API server, with a pod deleted and its IP handed to
// another during the capture, then stops watching, kills the processes
// and deletes the objects, and replays the capture: ctx['pod'],
// ctx['service'], ctx['namespace'], ctx['node'] and the other keys, and
// every provider lookup behind them, answer as the live store did.
func TestCaptureKeepsMetadata(t *testing.T) {
	v2, _ := needCgroups(t)
	c := cluster(t)
	store := NewStore(StoreConfig{Hostname: "capture-host", NodeName: "node-capture-1"})
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	w, err := Watch(wctx, c.Client, store)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	watching := true
	defer func() {
		if watching {
			w.Close()
		}
	}()
	f, _ := newFixture(t, c, "pxq-capture")
	node := f.node("node-capture-1", "capture-host", "192.168.60.10")
	labels := map[string]string{"app": "cart"}
	_, rs := f.deployment("cart", "cart-6b7c", 2, labels)

	const ipA, ipB = "10.244.5.11", "10.244.5.12"
	cidA, cidB := newContainerID(t), newContainerID(t)
	podA := f.runningPod("cart-6b7c-aaaaa", node.Name, ipA, cidA, rs, labels)
	podB := f.runningPod("db-0", node.Name, ipB, cidB, nil, nil)
	svc := f.service("cart", "cart-xyz12", labels, podA, ipA)
	eventually(t, "pods with service, deployment and containers", func() bool {
		p := store.PodByName(f.ns + "/" + podA.Name)
		return p != nil && len(p.ServiceUIDs) == 1 && p.DeploymentUID != "" && store.Container(cidA) != nil &&
			store.Container(cidB) != nil && store.ServiceByIP(svc.Spec.ClusterIP) != nil
	})

	underscored := func(uid string) string { return strings.ReplaceAll(uid, "-", "_") }
	upidA := inCgroup(t, v2, fmt.Sprintf("pxqtest-kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-%s.scope", underscored(string(podA.UID)), cidA))
	upidB := inCgroup(t, v2, fmt.Sprintf("pxqtest-kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-%s.scope", underscored(string(podB.UID)), cidB))

	// Rows while pod A holds ipA.
	t1 := time.Now().UnixNano()
	rows := []captureRow{
		{t1, upidA, ipB}, {t1, upidB, ipA}, {t1, upidA, svc.Spec.ClusterIP}, {t1, upidB, "10.9.9.9"},
	}
	// Pod A goes; pod C takes its IP; more rows.
	time.Sleep(20 * time.Millisecond)
	f.deletePod(podA.Name)
	eventually(t, "pod A stops", func() bool { p := store.Pod(string(podA.UID)); return p != nil && p.StopNS != 0 })
	time.Sleep(20 * time.Millisecond)
	podC := f.runningPod("cart-6b7c-ccccc", node.Name, ipA, newContainerID(t), rs, labels)
	eventually(t, "pod C on ipA", func() bool { p := store.PodByIP(ipA, 0); return p != nil && p.UID == string(podC.UID) })
	t2 := time.Now().UnixNano()
	rows = append(rows, captureRow{t2, upidB, ipA}, captureRow{t2, upidA, ipB})

	eng, err := engine.New(engine.Config{Meta: store, MaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := eng.Store().Create("capture_rows", captureRel, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Append(captureRecord(rows)); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(0, t2).Add(time.Second)
	live, liveRows := runCaptureScript(t, eng, now)

	// The live answers are the expected ones, so that equal answers from
	// the replay mean something.
	pA, pB, pC := f.ns+"/"+podA.Name, f.ns+"/db-0", f.ns+"/"+podC.Name
	want := map[captureRow]map[string]string{
		{t1, upidA, ipB}: {"pod": pA, "service": f.ns + "/cart", "namespace": f.ns, "node": node.Name, "container": "app",
			"deployment": f.ns + "/cart", "replicaset": f.ns + "/cart-6b7c", "cmdline": "sleep 300", "remote_pod": pB, "remote_node": node.Name},
		{t1, upidB, ipA}:                {"pod": pB, "service": "", "deployment": "", "remote_pod": pA, "remote_pod_last": pC},
		{t2, upidB, ipA}:                {"remote_pod": pC, "remote_pod_last": pC},
		{t1, upidA, svc.Spec.ClusterIP}: {"remote_service": f.ns + "/cart", "remote_pod": ""},
		{t1, upidB, "10.9.9.9"}:         {"remote_pod": "", "remote_service": ""},
	}
	checked := 0
	for _, got := range liveRows {
		at, _ := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", got["time_"])
		var r captureRow
		for _, c := range rows {
			if c.upid.String() == got["upid"] && c.ip == got["remote_addr"] && c.ts == at.UnixNano() {
				r = c
			}
		}
		exp, ok := want[r]
		if !ok {
			continue
		}
		checked++
		for k, v := range exp {
			if got[k] != v {
				t.Errorf("live row %v → %s at %d: %s = %q, want %q", r.upid, r.ip, r.ts, k, got[k], v)
			}
		}
	}
	if checked != len(want) || len(liveRows) != len(rows) {
		t.Fatalf("checked %d of %d live rows, %d rows out:\n%s", checked, len(want), len(liveRows), strings.Join(live, "\n"))
	}

	upids := []types.UInt128Value{upidA, upidB}
	ips := []string{ipA, ipB, svc.Spec.ClusterIP, "10.9.9.9"}
	times := []int64{t1, t2}
	names := map[string][]string{
		"pod":        {f.ns + "/" + podA.Name, f.ns + "/db-0", f.ns + "/" + podC.Name},
		"service":    {f.ns + "/cart"},
		"replicaset": {f.ns + "/cart-6b7c"},
		"deployment": {f.ns + "/cart"},
		"namespace":  {f.ns},
		"node":       {node.Name},
		"container":  {cidA, cidB},
	}
	wantLookups := lookups(store, upids, ips, times, names)

	dir := t.TempDir()
	m, err := capture.Write(dir, eng.Store(), store, capture.Options{PXQVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata != metadata.ModeKubernetes || !slices.Equal(m.Hosts, []string{"capture-host"}) || m.StartNS != t1 || m.EndNS != t2 {
		t.Errorf("manifest %+v", m)
	}

	// The cluster moves on without the capture: no watch, the processes
	// gone, the objects deleted.
	w.Close()
	watching = false
	for _, u := range upids {
		// Kill and reap (the cleanup's Wait then finds it gone).
		pid := int(u.PID())
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
	for _, name := range []string{podB.Name, podC.Name} {
		f.deletePod(name)
	}
	f.check(c.Client.CoreV1().Services(f.ns).Delete(f.ctx, svc.Name, metav1.DeleteOptions{}), "delete service")
	eventually(t, "processes gone", func() bool {
		fresh := NewStore(StoreConfig{})
		return fresh.Process(upidA) == nil && fresh.Process(upidB) == nil
	})

	cp, err := capture.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := engine.New(engine.Config{Meta: cp.Metadata(nil), MaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.Load(replay.Store()); err != nil {
		t.Fatal(err)
	}
	got, _ := runCaptureScript(t, replay, now)
	if !slices.Equal(got, live) {
		t.Errorf("replayed rows:\n%s\nlive rows:\n%s", strings.Join(got, "\n"), strings.Join(live, "\n"))
	}
	gotLookups := lookups(replay.Metadata(), upids, ips, times, names)
	for k, w := range wantLookups {
		if g := gotLookups[k]; !reflect.DeepEqual(g, w) {
			t.Errorf("replayed %s = %+v, live %+v", k, g, w)
		}
	}
}
