package metadata

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const testCID = "3f1a9e0c2b7d4e5f8a6b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"

// TestEntityOf is the table of docs/metadata.md, "Host entities": what a
// process records → the entity it belongs to.
func TestEntityOf(t *testing.T) {
	compose := `{"com.docker.compose.project":"shop","com.docker.compose.service":"web"}`
	cases := []struct {
		p    Process
		want HostEntity
	}{
		{Process{Cgroup: "/system.slice/nginx.service", Cmdline: "nginx: worker process"},
			HostEntity{EntityUnit, "system.slice", "nginx.service", "nginx.service", ""}},
		{Process{Cgroup: "/system.slice/foo.service/payload", Cmdline: "foo"},
			HostEntity{EntityUnit, "system.slice", "foo.service", "foo.service", ""}},
		{Process{Cgroup: "/user.slice/user-1000.slice/session-3.scope", Cmdline: "-bash"},
			HostEntity{EntityProcess, "user.slice", "bash", "", ""}},
		{Process{Cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/gnome-terminal-server.service", Cmdline: "x"},
			HostEntity{EntityUnit, "user.slice", "gnome-terminal-server.service", "gnome-terminal-server.service", ""}},
		{Process{Cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1f2e.scope", Cmdline: "python3 app.py"},
			HostEntity{EntityProcess, "user.slice", "python3", "", ""}},
		{Process{Cgroup: "/user.slice/user-1000.slice/user@1000.service/init.scope", Cmdline: "/usr/lib/systemd/systemd --user"},
			HostEntity{EntityProcess, "user.slice", "systemd", "", ""}},
		{Process{Cgroup: "/init.scope", Cmdline: "/sbin/init"},
			HostEntity{EntityProcess, "host", "init", "", ""}},
		{Process{Cgroup: "/system.slice/docker-" + testCID + ".scope", ContainerID: testCID, ContainerName: "shop-web-1", LabelsJSON: compose, Cmdline: "python app.py"},
			HostEntity{EntityContainer, "shop", "shop-web-1", "web", testCID}},
		{Process{Cgroup: "/system.slice/docker-" + testCID + ".scope", ContainerID: testCID, ContainerName: "db", Cmdline: "postgres"},
			HostEntity{EntityContainer, "system.slice", "db", "", testCID}},
		{Process{Cgroup: "/docker/" + testCID, ContainerID: testCID, Cmdline: "postgres"},
			HostEntity{EntityContainer, "host", testCID[:12], "", testCID}},
		{Process{Cgroup: "/machine.slice/libpod-" + testCID + ".scope/container", ContainerID: testCID, ContainerName: "cache"},
			HostEntity{EntityContainer, "machine.slice", "cache", "", testCID}},
		{Process{Cgroup: "/", Cmdline: "/usr/bin/python3 -m http.server"},
			HostEntity{EntityProcess, "host", "python3", "", ""}},
		{Process{Cgroup: "/system.slice", Cmdline: "postgres: checkpointer"},
			HostEntity{EntityProcess, "system.slice", "postgres", "", ""}},
		{Process{Cmdline: "sleep 300"}, HostEntity{EntityProcess, "host", "sleep", "", ""}}, // older capture: no cgroup
	}
	for _, c := range cases {
		got, ok := EntityOf(&c.p)
		if !ok || got != c.want {
			t.Errorf("EntityOf(%+v) = %+v, %v; want %+v", c.p, got, ok, c.want)
		}
	}
	if e, ok := EntityOf(&Process{Cgroup: "/"}); ok {
		t.Errorf("a kernel thread has entity %+v", e)
	}
}

func TestProcCgroupPath(t *testing.T) {
	cases := []struct{ text, want string }{
		{"0::/system.slice/nginx.service\n", "/system.slice/nginx.service"},
		// Hybrid host: units in v1's name=systemd, v2 at the root.
		{"9:name=systemd:/system.slice/nginx.service\n4:memory:/system.slice/nginx.service\n0::/\n", "/system.slice/nginx.service"},
		// A container in a v1 controller wins over the unit tree.
		{"9:name=systemd:/system.slice/docker.service\n4:memory:/docker/" + testCID + "\n0::/\n", "/docker/" + testCID},
		{"9:name=systemd:/\n0::/\n", "/"},
		{"4:memory:/process_api/3a555c1f98b5827573a63898d13b811d\n", ""},
	}
	for _, c := range cases {
		if got := ProcCgroupPath(c.text); got != c.want {
			t.Errorf("ProcCgroupPath(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestEntityUID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a := EntityUID("pod", "h1", "system.slice/nginx.service")
	if !uuid.MatchString(a) {
		t.Fatalf("EntityUID = %q, not a version 5 UUID", a)
	}
	if EntityUID("pod", "h1", "system.slice/nginx.service") != a {
		t.Error("EntityUID is not stable")
	}
	for _, b := range []string{EntityUID("pod", "h2", "system.slice/nginx.service"), EntityUID("service", "h1", "system.slice/nginx.service"), EntityUID("pod", "h1", "system.slice/nginx2.service")} {
		if b == a {
			t.Errorf("two entities share UID %s", a)
		}
	}
}

// TestRuntimeNames reads container names and compose labels from files
// laid out as docker and podman keep them.
func TestRuntimeNames(t *testing.T) {
	docker, podman := t.TempDir(), t.TempDir()
	const other = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	writeJSON(t, filepath.Join(docker, "containers", testCID, "config.v2.json"), map[string]any{
		"ID": testCID, "Name": "/shop-web-1",
		"Config": map[string]any{"Image": "shop:1", "Labels": map[string]string{
			LabelComposeProject: "shop", LabelComposeService: "web", "com.docker.compose.config-hash": "abc", "maintainer": "x"}},
	})
	writeJSON(t, filepath.Join(podman, "overlay-containers", "containers.json"), []map[string]any{
		{"id": other, "names": []string{"cache"}, "image": "redis"},
	})
	r := newRuntimeNames(docker, podman)
	got := r.lookup(testCID, "docker")
	if got.name != "shop-web-1" || got.labelsJSON != `{"com.docker.compose.project":"shop","com.docker.compose.service":"web"}` {
		t.Errorf("docker container: %+v", got)
	}
	if got := r.lookup(other, "podman"); got.name != "cache" || got.labelsJSON != "" {
		t.Errorf("podman container: %+v", got)
	}
	if got := r.lookup(other, ""); got.name != "cache" {
		t.Errorf("container of an unknown runtime: %+v", got)
	}
	if got := r.lookup(strings.Repeat("b", 64), "containerd"); got != (runtimeInfo{}) {
		t.Errorf("containerd container: %+v", got)
	}
	// An answer never changes for an id, so that every process of a
	// container names the same entity.
	if err := os.RemoveAll(filepath.Join(docker, "containers")); err != nil {
		t.Fatal(err)
	}
	if again := r.lookup(testCID, "docker"); again.name != "shop-web-1" {
		t.Errorf("cached answer changed: %+v", again)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostIndex: an entity starts with its earliest process, a container
// made again under the same name joins its pod, and values handed out
// are not modified.
func TestHostIndex(t *testing.T) {
	var x hostIndex
	const other = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	compose := `{"com.docker.compose.project":"shop","com.docker.compose.service":"web"}`
	web := func(id string, start int64) *Process {
		return &Process{Cgroup: "/system.slice/docker-" + id + ".scope", ContainerID: id, ContainerName: "shop-web-1",
			LabelsJSON: compose, Cmdline: "app", StartNS: start, Hostname: "h1"}
	}
	uid := x.add(web(testCID, 200), "")
	first, _ := x.pods.Get(uid)
	if x.add(web(testCID, 100), "") != uid || x.add(web(other, 300), "") != uid {
		t.Fatal("one entity got two pod UIDs")
	}
	pod, _ := x.pods.Get(uid)
	if pod.StartNS != 100 || !slices.Equal(pod.ContainerIDs, []string{testCID, other}) || pod.QualifiedName() != "shop/shop-web-1" || pod.NodeName != "h1" {
		t.Errorf("pod = %+v", pod)
	}
	if first.StartNS != 200 || len(first.ContainerIDs) != 1 {
		t.Errorf("a value handed out changed: %+v", first)
	}
	for _, id := range []string{testCID, other} {
		if c, ok := x.containers.Get(id); !ok || c.PodUID != uid || c.Name != "shop-web-1" {
			t.Errorf("container %s = %+v", id, c)
		}
	}
	svc, ok := x.services.Named("shop/web")
	if !ok || !slices.Equal(pod.ServiceUIDs, []string{svc.UID}) || svc.StartNS != 100 {
		t.Errorf("service %+v, pod services %v", svc, pod.ServiceUIDs)
	}
	if ns, ok := x.namespaces.Named("shop"); !ok || ns.StartNS != 100 {
		t.Errorf("namespace %+v", ns)
	}
	if n, ok := x.nodes.Named("h1"); !ok || n.StartNS != 100 {
		t.Errorf("node %+v", n)
	}
	if x.add(&Process{Cgroup: "/"}, "h1") != "" {
		t.Error("a kernel thread got a pod")
	}
}
