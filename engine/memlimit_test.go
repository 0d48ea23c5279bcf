package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/internal/testenv"
)

func TestMemoryLimitFormula(t *testing.T) {
	const gib = 1 << 30
	room := func(cg int64) int64 { return cg * 9 / 10 }
	for _, c := range []struct {
		store, cgroup, want int64
	}{
		{gib, 0, gib + MemoryOverhead},                          // no container: store + overhead
		{gib, 4 * gib, gib + MemoryOverhead},                    // a roomy container changes nothing
		{gib, gib, room(gib)},                                   // a tight one bounds it
		{0, 2 * gib, room(2 * gib)},                             // an unbounded store: the container's
		{0, 0, 0},                                               // nothing to go by
		{gib, gib + MemoryOverhead, room(gib + MemoryOverhead)}, // the headroom is kept
	} {
		if got := MemoryLimit(c.store, c.cgroup); got != c.want {
			t.Errorf("MemoryLimit(%d, %d) = %d, want %d", c.store, c.cgroup, got, c.want)
		}
	}
}

// writeFiles makes the files of a fake /proc/self and cgroup tree.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCgroupMemoryMaxLayouts reads the limit from the files of cgroup
// v2 and v1 layouts: the smallest of the cgroup's and its ancestors',
// "max" and v1's huge value meaning none, a mount of part of the tree.
func TestCgroupMemoryMaxLayouts(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  int64
	}{{
		name: "v2 pod and container",
		files: map[string]string{
			"mountinfo":                                  "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
			"cgroup":                                     "0::/kubepods/pod1/ctr\n",
			"sys/fs/cgroup/kubepods/memory.max":          "max\n",
			"sys/fs/cgroup/kubepods/pod1/memory.max":     "1073741824\n",
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": "max\n",
		},
		want: 1 << 30,
	}, {
		name: "v2 cgroup namespace",
		files: map[string]string{
			"mountinfo":                "30 23 0:26 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
			"cgroup":                   "0::/\n",
			"sys/fs/cgroup/memory.max": "536870912\n",
		},
		want: 512 << 20,
	}, {
		name: "v2 no limit",
		files: map[string]string{
			"mountinfo":                           "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
			"cgroup":                              "0::/user.slice\n",
			"sys/fs/cgroup/user.slice/memory.max": "max\n",
		},
	}, {
		name: "v1 memory controller",
		files: map[string]string{
			"mountinfo": "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
				"35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n" +
				"41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
			"cgroup": "4:memory:/docker/abc\n1:cpu:/\n0::/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            "9223372036854771712\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "314572800\n",
		},
		want: 300 << 20,
	}, {
		name: "v1 mount of a subtree",
		files: map[string]string{
			"mountinfo": "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
			"cgroup":    "4:memory:/docker/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "209715200\n",
		},
		want: 200 << 20,
	}} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, c.files)
			got, err := cgroupMemoryMax(filepath.Join(root, "mountinfo"), filepath.Join(root, "cgroup"), root)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("limit = %d, want %d", got, c.want)
			}
		})
	}
}

// childEnv makes the test binary, started by TestMemoryLimitFromCgroup
// inside a cgroup, print what SetMemoryLimit found and set.
const childEnv = "PXQ_MEMLIMIT_CHILD"

func TestMain(m *testing.M) {
	if store := os.Getenv(childEnv); store != "" {
		n, _ := strconv.ParseInt(store, 10, 64)
		s, err := SetMemoryLimit(n)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(s.Cgroup, s.Limit, debug.SetMemoryLimit(-1), s.FromEnv, s.Warning != "")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMemoryLimitFromCgroup runs a process in a real cgroup with a
// memory limit and checks the Go memory limit it sets itself.
func TestMemoryLimitFromCgroup(t *testing.T) {
	testenv.RequireRoot(t, "make a cgroup")
	var dir, file string
	if v2 := testenv.CgroupMount(t, ""); v2 != "" {
		if b, err := os.ReadFile(filepath.Join(v2, "cgroup.subtree_control")); err == nil && strings.Contains(string(b), "memory") {
			dir, file = filepath.Join(v2, fmt.Sprintf("pxq-memlimit-%d", os.Getpid())), "memory.max"
		}
	}
	if dir == "" {
		if v1 := testenv.CgroupMount(t, "memory"); v1 != "" {
			dir, file = filepath.Join(v1, fmt.Sprintf("pxq-memlimit-%d", os.Getpid())), "memory.limit_in_bytes"
		}
	}
	if dir == "" {
		testenv.SkipOrFail(t, "no cgroup hierarchy with the memory controller (v2 with memory in the root's subtree_control, or v1's memory)")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		testenv.SkipOrFailf(t, "cannot make a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) }) // empty once the child exits
	const cgLimit = 600 << 20
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.Itoa(cgLimit)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(store int64, env ...string) []string {
		t.Helper()
		// The shell moves itself into the cgroup, then becomes the test
		// binary, which reads its own cgroup.
		cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2"`, "sh", dir, os.Args[0])
		cmd.Env = append(append(os.Environ(), childEnv+"="+strconv.FormatInt(store, 10)), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v: %s", err, out)
		}
		return strings.Fields(string(out))
	}
	// A store that fits: store + overhead.
	got := run(100 << 20)
	want := []string{strconv.Itoa(cgLimit), strconv.Itoa(100<<20 + MemoryOverhead), strconv.Itoa(100<<20 + MemoryOverhead), "false", "false"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("store 100 MiB in a 600 MiB cgroup: got %q, want %q (cgroup, limit, runtime's limit, from env, warned)", got, want)
	}
	// A store too big for the cgroup: 90% of the cgroup's, and a warning.
	got = run(1 << 30)
	room := strconv.Itoa(cgLimit * 9 / 10)
	if want := []string{strconv.Itoa(cgLimit), room, room, "false", "true"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("store 1 GiB in a 600 MiB cgroup: got %q, want %q", got, want)
	}
	// GOMEMLIMIT wins.
	got = run(100<<20, "GOMEMLIMIT=123MiB")
	if want := strconv.Itoa(123 << 20); len(got) < 4 || got[2] != want || got[3] != "true" {
		t.Errorf("GOMEMLIMIT=123MiB: got %q, want the runtime's limit %s, from env", got, want)
	}
}
