package testenv

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestSkipOrFail runs itself in a child process that cannot run, once
// with CI=true and once without: the first fails with the reason, the
// second skips with it.
func TestSkipOrFail(t *testing.T) {
	const reason = "the machine lacks a frobnicator"
	if os.Getenv("TESTENV_CHILD") == "1" {
		SkipOrFail(t, reason)
		t.Fatal("SkipOrFail returned")
	}
	for _, ci := range []bool{true, false} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipOrFail$", "-test.v", "-test.count=1")
		cmd.Env = append(withoutCI(os.Environ()), "TESTENV_CHILD=1")
		if ci {
			cmd.Env = append(cmd.Env, "CI=true")
		}
		out, err := cmd.CombinedOutput()
		switch {
		case !strings.Contains(string(out), reason):
			t.Errorf("CI=%v: output does not give the reason:\n%s", ci, out)
		case ci && (err == nil || !strings.Contains(string(out), "--- FAIL: TestSkipOrFail")):
			t.Errorf("CI=true: the test did not fail (err %v):\n%s", err, out)
		case !ci && (err != nil || !strings.Contains(string(out), "--- SKIP: TestSkipOrFail")):
			t.Errorf("without CI: the test did not skip (err %v):\n%s", err, out)
		}
	}
}

func withoutCI(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "CI=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestCgroupMount finds cgroup v2 where the kernel says a cgroup2 file
// system is (its statfs magic).
func TestCgroupMount(t *testing.T) {
	v2 := CgroupMount(t, "")
	if v2 == "" {
		SkipOrFail(t, "no cgroup v2 mount")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(v2, &st); err != nil {
		t.Fatal(err)
	}
	const cgroup2Magic = 0x63677270
	if st.Type != cgroup2Magic {
		t.Errorf("%s: file system type %#x, not cgroup2", v2, st.Type)
	}
	if m := CgroupMount(t, "no-such-controller"); m != "" {
		t.Errorf("a hierarchy of no-such-controller at %s", m)
	}
}
