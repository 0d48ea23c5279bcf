package testenv

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// CgroupMount returns where a cgroup hierarchy is mounted, from
// /proc/self/mountinfo: cgroup v2 for option "", else the v1 hierarchy
// with the super option option ("memory", "name=systemd"); "" when it is
// not mounted.
func CgroupMount(t testing.TB, option string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		// "id parent dev root mountpoint … - fstype source superoptions"
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 5 || sep+3 >= len(f) {
			continue
		}
		fstype, opts := f[sep+1], strings.Split(f[sep+3], ",")
		if (option == "" && fstype == "cgroup2") || (option != "" && fstype == "cgroup" && slices.Contains(opts, option)) {
			return f[4]
		}
	}
	return ""
}
