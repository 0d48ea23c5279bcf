package metadata_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/internal/procfs"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/k8s"
	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// place says where a test process goes: a cgroup rel under each mount
// ("" for the mount's root).
type place map[string]string

// inCgroups starts `sleep` and moves it into a cgroup of each hierarchy
// of where, creating the folders; cleanup kills it and removes the
// folders it created, deepest first.
func inCgroups(t *testing.T, where place) types.UInt128Value {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	for mount, rel := range where {
		dir := mount
		for _, seg := range strings.Split(rel, "/") {
			if seg == "" {
				continue
			}
			dir = filepath.Join(dir, seg)
			if err := os.Mkdir(dir, 0o755); err == nil {
				made := dir
				t.Cleanup(func() { os.Remove(made) }) // runs after the kill below
			} else if !os.IsExist(err) {
				t.Fatalf("create cgroup %s: %v", dir, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatalf("move pid %d into %s: %v", pid, dir, err)
		}
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Right after fork, /proc shows the parent's command line.
	for i := 0; i < 200; i++ {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.HasPrefix(string(b), "sleep") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := procfs.ReadStat("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	return types.UPID(0, uint32(pid), st.StartNS())
}

// entityWant is what a test process must be named.
type entityWant struct {
	pod, namespace, service, container string
	shared                             bool // other processes (sleeps) may be in it too
	procs                              []types.UInt128Value
}

// hostFixture runs real processes in a systemd service, a scope (named
// by executable), docker containers (one of a compose project, one whose
// runtime files are absent), a podman container, a service in systemd's
// v1 hierarchy when there is one, and the root cgroup, on a Host reading
// docker and podman files laid out in temporary folders.
func hostFixture(t *testing.T) (*metadata.Host, map[string]*entityWant) {
	t.Helper()
	testenv.RequireRoot(t, "create cgroups")
	// cgroup v2, and systemd's v1 hierarchy of a hybrid host.
	v2, v1 := testenv.CgroupMount(t, ""), testenv.CgroupMount(t, "name=systemd")
	if v2 == "" {
		testenv.SkipOrFail(t, "no cgroup v2 mount")
	}
	docker, podman := t.TempDir(), t.TempDir()
	// Names of this run's own, should the test run twice at once.
	sfx := strconv.Itoa(os.Getpid())
	unit, v1unit, project := "pxqtest-demo-"+sfx+".service", "pxqtest-v1-"+sfx+".service", "pxqshop"+sfx
	web, bare, cache := k8stest.ContainerID(t), k8stest.ContainerID(t), k8stest.ContainerID(t)
	metadata.WriteJSON(t, filepath.Join(docker, "containers", web, "config.v2.json"), map[string]any{
		"ID": web, "Name": "/pxqtest-web-" + sfx, "Config": map[string]any{"Labels": map[string]string{
			"com.docker.compose.project": project, "com.docker.compose.service": "web", "com.docker.compose.oneoff": "False"}},
	})
	metadata.WriteJSON(t, filepath.Join(podman, "overlay-containers", "containers.json"), []map[string]any{
		{"id": cache, "names": []string{"pxqtest-cache-" + sfx}, "image": "redis"},
	})
	h, err := metadata.NewHostConfig(metadata.HostConfig{DockerRoot: docker, PodmanRoot: podman})
	if err != nil {
		t.Fatal(err)
	}
	// Outside the moved cgroup, a process keeps the test's own place in
	// the other hierarchy: put it at the root there.
	roots := func(rel string) place {
		p := place{v2: rel}
		if v1 != "" {
			p[v1] = ""
		}
		return p
	}
	want := map[string]*entityWant{
		"unit":      {pod: "system.slice/" + unit, namespace: "system.slice", service: "system.slice/" + unit},
		"scope":     {pod: "user.slice/sleep", namespace: "user.slice", shared: true},
		"compose":   {pod: project + "/pxqtest-web-" + sfx, namespace: project, service: project + "/web", container: "pxqtest-web-" + sfx},
		"container": {pod: "system.slice/" + bare[:12], namespace: "system.slice", container: bare[:12]},
		"podman":    {pod: "machine.slice/pxqtest-cache-" + sfx, namespace: "machine.slice", container: "pxqtest-cache-" + sfx},
		"process":   {pod: "host/sleep", namespace: "host", shared: true},
	}
	add := func(key string, where place) { want[key].procs = append(want[key].procs, inCgroups(t, where)) }
	add("unit", roots("system.slice/"+unit))
	add("unit", roots("system.slice/"+unit))
	add("scope", roots("user.slice/pxqtest-session-"+sfx+".scope"))
	add("compose", roots("system.slice/docker-"+web+".scope"))
	add("container", roots("system.slice/docker-"+bare+".scope"))
	add("podman", roots("machine.slice/libpod-"+cache+".scope/container"))
	add("process", roots(""))
	if v1 != "" {
		// A hybrid host: units in v1's name=systemd, the process at v2's
		// root.
		want["v1unit"] = &entityWant{pod: "system.slice/" + v1unit, namespace: "system.slice", service: "system.slice/" + v1unit}
		add("v1unit", place{v2: "", v1: "system.slice/" + v1unit})
	} else {
		t.Log("no name=systemd hierarchy: the hybrid layout is not tried")
	}
	return h, want
}

// TestHostEntities checks every lookup of a Host for processes in real
// cgroups: the pod of each, and its service, namespace, node and
// container, each found by UID and by name and leading back to the same.
func TestHostEntities(t *testing.T) {
	h, want := hostFixture(t)
	host := h.Hostname()
	for key, w := range want {
		for _, u := range w.procs {
			p := h.Process(u)
			if p == nil {
				t.Fatalf("%s: process %v unknown", key, u)
			}
			pod := h.Pod(p.PodUID)
			if pod == nil || pod.QualifiedName() != w.pod || pod.Namespace != w.namespace || pod.NodeName != host || pod.Phase != "Running" {
				t.Errorf("%s: pod of %+v = %+v, want %s", key, p, pod, w.pod)
				continue
			}
			if pod.StartNS <= 0 || pod.StartNS > p.StartNS {
				t.Errorf("%s: pod starts at %d, its process at %d", key, pod.StartNS, p.StartNS)
			}
			if by := h.PodByName(w.pod); by == nil || by.UID != pod.UID {
				t.Errorf("%s: PodByName(%s) = %+v, want UID %s", key, w.pod, by, pod.UID)
			}
			if w.service == "" {
				if len(pod.ServiceNames) != 0 {
					t.Errorf("%s: services %v, want none", key, pod.ServiceNames)
				}
			} else {
				s := h.ServiceByName(w.service)
				if !slices.Equal(pod.ServiceNames, []string{w.service}) || s == nil || !slices.Equal(pod.ServiceUIDs, []string{s.UID}) {
					t.Errorf("%s: pod services %v %v, ServiceByName(%s) = %+v", key, pod.ServiceNames, pod.ServiceUIDs, w.service, s)
				} else if byUID := h.Service(s.UID); byUID == nil || byUID.QualifiedName() != w.service {
					t.Errorf("%s: Service(%s) = %+v", key, s.UID, byUID)
				}
			}
			if ns := h.Namespace(w.namespace); ns == nil || ns.UID == "" {
				t.Errorf("%s: Namespace(%s) = %+v", key, w.namespace, ns)
			}
			if p.ContainerName != w.container {
				t.Errorf("%s: container name %q, want %q", key, p.ContainerName, w.container)
			}
			if w.container != "" {
				c := h.Container(p.ContainerID)
				if c == nil || c.Name != w.container || c.PodUID != pod.UID || !slices.Equal(pod.ContainerIDs, []string{p.ContainerID}) {
					t.Errorf("%s: Container(%s) = %+v, pod containers %v", key, p.ContainerID, c, pod.ContainerIDs)
				}
				if by := h.ContainerByName(w.container); by == nil || by.ID != p.ContainerID {
					t.Errorf("%s: ContainerByName(%s) = %+v", key, w.container, by)
				}
			}
		}
	}
	if n := h.Node(host); n == nil || n.Name != host {
		t.Errorf("Node(%s) = %+v", host, n)
	}
	// Local addresses belong to the host's own pod.
	locals := []string{"127.0.0.1", "::1", "::ffff:127.0.0.1"}
	if ip := firstIPv4(t); ip != "" {
		locals = append(locals, ip)
	}
	for _, ip := range locals {
		pod := h.PodByIP(ip, 0)
		if pod == nil || pod.QualifiedName() != "host/"+host || pod.NodeName != host {
			t.Errorf("PodByIP(%s) = %+v, want host/%s", ip, pod, host)
			continue
		}
		if l := h.IPHistory(ip); len(l) != 1 || l[0].PodUID != pod.UID || h.PodByIP(ip, time.Now().UnixNano()) == nil {
			t.Errorf("IPHistory(%s) = %+v", ip, l)
		}
	}
	if h.PodByIP("192.0.2.1", 0) != nil || h.IPHistory("192.0.2.1") != nil {
		t.Error("a remote address has a pod")
	}
	names := h.Names("pod")
	for key, w := range want {
		if !slices.Contains(names, w.pod) {
			t.Errorf("%s: Names(pod) = %v lacks %s", key, names, w.pod)
		}
	}
}

// firstIPv4 returns a non-loopback IPv4 address of this host ("" when it
// has none).
func firstIPv4(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

// entityScript names each row's entity through every path a script may
// take: ctx keys, function chains from the UPID and back from names.
var entityScript = `import px
df = px.DataFrame(table='entity_rows', start_time='-10m')
df.pid = px.upid_to_pid(df.upid)
` + plantest.CtxColumns("pod", "pod_id", "service", "namespace", "node", "container") +
	`df.chain_pod = px.pod_id_to_pod_name(px.upid_to_pod_id(df.upid))
df.chain_ns = px.pod_id_to_namespace(df.pod_id)
df.chain_svc = px.pod_id_to_service_name(df.pod_id)
df.chain_node = px.pod_id_to_node_name(df.pod_id)
df.upid_pod = px.upid_to_pod_name(df.upid)
df.back_id = px.pod_name_to_pod_id(df.pod)
df.back_svc = px.pod_name_to_service_name(df.pod)
df.svc_back = px.service_id_to_service_name(px.service_name_to_service_id(df.service))
df.ns_id = px.namespace_name_to_namespace_id(df.namespace)
df.status = px.pluck(px.pod_name_to_status(df.pod), 'phase')
df.local = px.pod_id_to_pod_name(px.ip_to_pod_id('127.0.0.1'))
df.local_node = px.pod_id_to_node_name(px.ip_to_pod_id('127.0.0.1'))
px.display(df.drop(['time_', 'upid']), 'entities')
`

// TestHostEntitiesThroughEngine runs PxL over rows of the real processes
// and checks what every metadata function says of them.
func TestHostEntitiesThroughEngine(t *testing.T) {
	h, want := hostFixture(t)
	rows, _ := entityRows(t, newEngine(t, h), want)
	checkEntityRows(t, "live", rows, want, h.Hostname())
}

// TestClusterKeepsKubernetesNames: on a cluster the Kubernetes store
// answers, and host entities do not exist: the same processes, outside
// any pod, have no pod, service or namespace, and no container name
// read from the runtime's files.
func TestClusterKeepsKubernetesNames(t *testing.T) {
	h, want := hostFixture(t)
	store := k8s.NewStore(k8s.StoreConfig{Hostname: h.Hostname()})
	rows, upids := entityRows(t, newEngine(t, store), want)
	if len(rows) != len(upids) {
		t.Fatalf("%d rows, want %d", len(rows), len(upids))
	}
	for _, r := range rows {
		for _, col := range []string{"pod", "pod_id", "service", "namespace", "node", "container", "local"} {
			if r[col] != "" {
				t.Errorf("pid %v: %s = %q on a cluster", r["pid"], col, r[col])
			}
		}
	}
}

// checkEntityRows checks the output of entityScript: one row per process,
// named as want says, every path agreeing.
func checkEntityRows(t *testing.T, label string, rows []map[string]any, want map[string]*entityWant, host string) {
	t.Helper()
	byPID := map[int64]map[string]any{}
	for _, r := range rows {
		byPID[r["pid"].(int64)] = r
	}
	for key, w := range want {
		for _, u := range w.procs {
			r := byPID[int64(u.PID())]
			if r == nil {
				t.Errorf("%s %s: no row of pid %d", label, key, u.PID())
				continue
			}
			exp := map[string]any{
				"pod": w.pod, "chain_pod": w.pod, "upid_pod": w.pod, "back_id": r["pod_id"],
				"namespace": w.namespace, "chain_ns": w.namespace,
				"service": w.service, "chain_svc": w.service, "back_svc": w.service, "svc_back": w.service,
				"node": host, "chain_node": host, "container": w.container, "status": "Running",
				"local": "host/" + host, "local_node": host,
			}
			for col, v := range exp {
				if r[col] != v {
					t.Errorf("%s %s: %s = %q, want %q", label, key, col, r[col], v)
				}
			}
			if r["pod_id"] == "" || r["ns_id"] == "" {
				t.Errorf("%s %s: pod_id %q, namespace id %q", label, key, r["pod_id"], r["ns_id"])
			}
		}
	}
}

// TestPodCentricScripts samples the real processes into process_stats
// and runs a script written as Pixie's are (rows without a pod dropped,
// grouped by pod and service), and the library's px/pods: both list the
// entities with their processes.
func TestPodCentricScripts(t *testing.T) {
	h, want := hostFixture(t)
	eng := newEngine(t, h)
	sm, err := proc.NewSampler(proc.Config{Period: time.Hour}, eng.Store())
	if err != nil {
		t.Fatal(err)
	}
	if err := sm.Sample(time.Now()); err != nil {
		t.Fatal(err)
	}
	sm.Close()

	out := rowsOf(t, collect(t, eng, `import px
df = px.DataFrame(table='process_stats', start_time='-5m')
df.pod = df.ctx['pod']
df.service = df.ctx['service']
df = df[df.pod != '']
df = df.groupby(['pod', 'service', 'upid']).agg(samples=('rss_bytes', px.count))
df = df.groupby(['pod', 'service']).agg(processes=('upid', px.count))
px.display(df, 'by_pod')
`, nil)["by_pod"])
	got := map[string]map[string]any{}
	for _, r := range out {
		if r["pod"] == "" {
			t.Errorf("a row without a pod passed the filter: %v", r)
		}
		got[r["pod"].(string)] = r
	}
	for key, w := range want {
		r := got[w.pod]
		if r == nil {
			t.Errorf("%s: no row for %s in %d rows", key, w.pod, len(out))
			continue
		}
		if r["service"] != w.service {
			t.Errorf("%s: service %q, want %q", key, r["service"], w.service)
		}
		if n := r["processes"].(int64); n < int64(len(w.procs)) || (!w.shared && n != int64(len(w.procs))) {
			t.Errorf("%s: %d processes, want %d", key, n, len(w.procs))
		}
	}

	s, err := scripts.NewLibrary().Get("px/pods")
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Collect(context.Background(), engine.Query{Script: s, Args: map[string]string{"start_time": "-5m"}})
	if err != nil {
		t.Fatal(err)
	}
	var pods []map[string]any
	for _, tb := range res {
		if tb.Name == "pods" {
			pods = rowsOf(t, tb)
		}
	}
	listed := map[string]map[string]any{}
	for _, r := range pods {
		listed[r["pod"].(string)] = r
	}
	for key, w := range want {
		r := listed[w.pod]
		if r == nil {
			t.Errorf("px/pods: %s (%s) not listed", w.pod, key)
			continue
		}
		if r["namespace"] != w.namespace || r["node"] != h.Hostname() || r["status"] != "Running" {
			t.Errorf("px/pods: %s = %v", w.pod, r)
		}
		if n := r["processes"].(int64); n < int64(len(w.procs)) || (!w.shared && n != int64(len(w.procs))) {
			t.Errorf("px/pods: %s has %d processes, want %d", w.pod, n, len(w.procs))
		}
	}
}

// TestHostEntitiesReplay takes a snapshot of the live Host over rows of
// the real processes, saves its processes as JSON as a capture does, and
// replays it with no live provider behind: the same script gives the
// same rows.
func TestHostEntitiesReplay(t *testing.T) {
	h, want := hostFixture(t)
	live, upids := entityRows(t, newEngine(t, h), want)

	snap := metadata.Take(h, 0, time.Now().UnixNano(), upids)
	var back metadata.Snapshot
	jsonRoundTrip(t, snap, &back)
	for _, p := range snap.Processes { // processes.json keeps them apart
		var q metadata.Process
		jsonRoundTrip(t, p, &q)
		q.UPID = p.UPID
		back.Processes = append(back.Processes, &q)
	}
	// An older capture's processes lack the pod UID: the entities come
	// from what the processes record all the same.
	old := back
	old.Pods, old.Processes = nil, nil
	for _, p := range back.Processes {
		q := *p
		q.PodUID = ""
		old.Processes = append(old.Processes, &q)
	}
	for label, s := range map[string]*metadata.Snapshot{"replay": &back, "older capture": &old} {
		r := metadata.NewReplay(metadata.WithHostEntities(s), nil)
		reng := newEngine(t, r)
		appendUPIDs(t, reng, upids)
		got := rowsOf(t, collect(t, reng, entityScript, nil)["entities"])
		checkEntityRows(t, label, got, want, h.Hostname())
		if !sameRows(got, live) {
			t.Errorf("%s rows differ from the live ones:\n%v\n%v", label, got, live)
		}
	}
}

func sameRows(a, b []map[string]any) bool {
	key := func(rows []map[string]any) []string {
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprint(r))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func newEngine(t *testing.T, meta metadata.Provider) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Config{Meta: meta, MaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// appendUPIDs writes one (time_, upid) row per upid to table entity_rows.
// jsonRoundTrip decodes into out what in encodes to as JSON, as a
// capture's files keep it.
func jsonRoundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// entityRows appends a row of each process of want to eng's entity_rows
// and returns what entityScript makes of them, and their UPIDs.
func entityRows(t *testing.T, eng *engine.Engine, want map[string]*entityWant) ([]map[string]any, []types.UInt128Value) {
	t.Helper()
	var upids []types.UInt128Value
	for _, w := range want {
		upids = append(upids, w.procs...)
	}
	appendUPIDs(t, eng, upids)
	return rowsOf(t, collect(t, eng, entityScript, nil)["entities"]), upids
}

func appendUPIDs(t *testing.T, eng *engine.Engine, upids []types.UInt128Value) {
	t.Helper()
	rel := types.Relation{{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS}, {Name: "upid", Type: types.UInt128, Semantic: types.STUPID}}
	tb, err := eng.Store().Create("entity_rows", rel, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.DefaultAllocator
	tsb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond})
	ub := array.NewFixedSizeBinaryBuilder(mem, &arrow.FixedSizeBinaryType{ByteWidth: 16})
	now := time.Now().UnixNano()
	for _, u := range upids {
		tsb.Append(arrow.Timestamp(now))
		ub.Append(u.Bytes())
	}
	rec := array.NewRecord(rel.ArrowSchema(), []arrow.Array{tsb.NewArray(), ub.NewArray()}, int64(len(upids)))
	if err := tb.Append(rec); err != nil {
		t.Fatal(err)
	}
}

func collect(t *testing.T, eng *engine.Engine, src string, args map[string]string) map[string]*format.Table {
	t.Helper()
	res, err := eng.Collect(context.Background(), engine.Query{Script: &scripts.Script{Name: "t", Path: "t.pxl", PXL: []byte(src)}, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*format.Table{}
	for _, tb := range res {
		out[tb.Name] = tb
	}
	return out
}

func rowsOf(t *testing.T, tb *format.Table) []map[string]any {
	t.Helper()
	if tb == nil {
		t.Fatal("no such output table")
	}
	var out []map[string]any
	for _, rec := range tb.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := map[string]any{}
			for c, col := range tb.Relation {
				row[col.Name] = format.Value(rec.Column(c), i)
			}
			out = append(out, row)
		}
	}
	return out
}
