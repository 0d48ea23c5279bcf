package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/metadata"
)

// TestMain lets the test binary play `pxq demo-app NAME`, so that the
// tests below start the demo's processes as pxq demo does.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "demo-app" {
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		err := RunChild(ctx, os.Args[2], os.Stdin, os.Stdout)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startTestProcesses runs the demo's processes from the test binary.
func startTestProcesses(t *testing.T, o cgroupOptions) *App {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	app, err := startProcesses(context.Background(), exe, os.Stderr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Stop() })
	return app
}

// checkServes gets the frontend's home page through the whole shop.
func checkServes(t *testing.T, app *App) {
	t.Helper()
	c := newClient(app.Env) // resolves the services with the demo's DNS server
	c.Timeout = 10 * time.Second
	resp, err := c.Get(app.Target + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET / answered %s", resp.Status)
	}
}

// TestProcessesInCgroups starts the demo's processes, each in its own
// cgroup, started inside it and else moved into it, and checks the host
// entity pxq names each by: the unit NAME.service in the slice. Stop
// removes the cgroups. The slice is the test's own, so that a demo
// running meanwhile does not share it.
func TestProcessesInCgroups(t *testing.T) {
	testenv.RequireRoot(t, "make cgroups")
	for _, noClone := range []bool{false, true} {
		t.Run(fmt.Sprintf("noClone=%v", noClone), func(t *testing.T) {
			slice := fmt.Sprintf("pxqtest-demo-%d.slice", os.Getpid())
			app := startTestProcesses(t, cgroupOptions{slice: slice, noClone: noClone})
			if app.CgroupErr != nil {
				testenv.SkipOrFailf(t, "no cgroups for the demo: %v", app.CgroupErr)
			}
			if !noClone && app.cg.noClone {
				t.Log("the kernel cannot start a process in a cgroup (Linux < 5.7): the processes were moved")
			}
			checkServes(t, app)
			names := append([]string{DNS}, Services...)
			if len(app.procs) != len(names) {
				t.Fatalf("%d processes, want %d", len(app.procs), len(names))
			}
			for i, c := range app.procs {
				pid := c.cmd.Process.Pid
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
				if err != nil {
					t.Fatal(err)
				}
				cg := metadata.ProcCgroupPath(string(b))
				if want := "/" + slice + "/" + UnitOf(names[i]); cg != want {
					t.Errorf("%s (pid %d) is in cgroup %s, want %s", names[i], pid, cg, want)
				}
				ent, ok := metadata.EntityOf(&metadata.Process{Cgroup: cg, Cmdline: "pxq demo-app " + names[i]})
				want := metadata.HostEntity{Kind: metadata.EntityUnit, Namespace: slice, Name: UnitOf(names[i]), Service: UnitOf(names[i])}
				if !ok || ent != want {
					t.Errorf("%s is entity %+v, want %+v", names[i], ent, want)
				}
			}
			dir := app.cg.slice
			if err := app.Stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there after Stop (%v)", dir, err)
			}
		})
	}
}

// TestProcessesWithoutCgroups starts the demo where no cgroup can be
// made: it runs all the same, and says why.
func TestProcessesWithoutCgroups(t *testing.T) {
	root := t.TempDir() // not a cgroup file system
	app := startTestProcesses(t, cgroupOptions{root: root})
	if app.CgroupErr == nil || !strings.Contains(app.CgroupErr.Error(), "not a cgroup v2 file system") {
		t.Errorf("CgroupErr = %v, want that %s is no cgroup v2", app.CgroupErr, root)
	}
	checkServes(t, app)
	if err := app.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, Slice)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("made %s in a folder that is no cgroup", Slice)
	}
}

func TestCgroup2Mount(t *testing.T) {
	dir := t.TempDir()
	info := filepath.Join(dir, "mountinfo")
	os.WriteFile(info, []byte(`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/uni\040fied rw,relatime shared:9 - cgroup2 cgroup2 rw
`), 0o644)
	got, err := cgroup2Mount(info)
	if err != nil || got != "/sys/fs/cgroup/uni fied" {
		t.Errorf("cgroup2Mount = %q, %v; want /sys/fs/cgroup/uni fied", got, err)
	}
	os.WriteFile(info, []byte("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"), 0o644)
	if got, err := cgroup2Mount(info); err == nil {
		t.Errorf("cgroup2Mount = %q without a cgroup2 mount", got)
	}
}
