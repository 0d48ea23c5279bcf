// Package testenv is what pxq's tests know about the machine they run
// on: whether it can run them (root, Kubernetes binaries, a browser) and
// what a test does when it cannot. Tests run the real thing; one that
// cannot run here skips, saying why, and under CI=true it fails instead,
// so that CI cannot pass having run nothing.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CI reports whether the tests run under CI (CI=true), where every test
// must run.
func CI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail stops a test that cannot run on this machine: it skips with
// the reason, or, under CI=true, fails with it.
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true and the test cannot run: %s", reason)
	}
	t.Skip(reason)
}

// SkipOrFailf is SkipOrFail with a formatted reason.
func SkipOrFailf(t testing.TB, format string, args ...any) {
	t.Helper()
	SkipOrFail(t, fmt.Sprintf(format, args...))
}

// RequireRoot stops the test (SkipOrFail) unless it runs as root; what
// says what needs root, as in "needs root to " + what.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		SkipOrFailf(t, "needs root to %s (uid is %d; run the test as root)", what, uid)
	}
}

// KubeBuildHint says how to get the binaries KubeBinaries looks for.
const KubeBuildHint = "build them with test/k8s/build.sh (or make -C test/k8s k8s-bins; about 6 min once), or point KUBEBUILDER_ASSETS at a folder holding kube-apiserver and etcd"

// KubeBinaries returns the folder holding the kube-apiserver and etcd
// binaries that the real API server tests run: $KUBEBUILDER_ASSETS, else
// the cache that test/k8s/build.sh fills ($XDG_CACHE_HOME/pxq/k8s-bins,
// by default ~/.cache/pxq/k8s-bins). Without them it stops the test
// (SkipOrFail), naming the command that builds them.
func KubeBinaries(t testing.TB) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		dirs = append(dirs, d)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	dirs = append(dirs, filepath.Join(cache, "pxq", "k8s-bins"))
	for _, d := range dirs {
		if isExec(filepath.Join(d, "kube-apiserver")) && isExec(filepath.Join(d, "etcd")) {
			return d
		}
	}
	SkipOrFailf(t, "no kube-apiserver and etcd in %v; %s", dirs, KubeBuildHint)
	return ""
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Chromium returns the path of the Chromium that the browser tests drive:
// $PXQ_CHROMIUM, the distribution's package, or chromium on $PATH.
// Without one it stops the test (SkipOrFail).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("PXQ_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" && isExec(p) {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	SkipOrFail(t, "no Chromium: apt-get install -y chromium (or set PXQ_CHROMIUM)")
	return ""
}
