package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pxq-dev/pxq/internal/testenv"
)

var (
	buildOnce sync.Once
	builtPXQ  string
	buildErr  error
)

// pxqBinary builds pxq once for the tests that run it as a user would.
func pxqBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pxq-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPXQ = filepath.Join(dir, "pxq")
		out, err := exec.Command("go", "build", "-o", builtPXQ, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			builtPXQ = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, builtPXQ)
	}
	return builtPXQ
}

// runPXQ runs the binary in a fresh process and returns its stdout and
// stderr.
func runPXQ(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(pxqBinary(t), args...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

var titleRE = regexp.MustCompile(`(?m)^(\w+) \((\d+) rows?\)`)

// tableRows reads "name (N rows)" titles of text output.
func tableRows(out string) map[string]int {
	m := map[string]int{}
	for _, s := range titleRE.FindAllStringSubmatch(out, -1) {
		m[s[1]], _ = strconv.Atoi(s[2])
	}
	return m
}

// checkDemoOutput checks that both scripts printed rows of the demo's
// processes.
func checkDemoOutput(t *testing.T, stdout string) {
	t.Helper()
	rows := tableRows(stdout)
	if rows["http_data"] == 0 || rows["http_request_stats"] == 0 {
		t.Errorf("want rows in http_data and http_request_stats, got %v\n%s", rows, stdout)
	}
	for _, s := range []string{"pxq demo-app frontend", "pxq demo-app catalog", "Next steps:"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q\n%s", s, stdout)
		}
	}
}

// TestREADMEDemo runs the README's first command as a new user would: a
// built pxq, `pxq demo` in a fresh process, with real eBPF.
func TestREADMEDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end demo")
	}
	testenv.RequireRoot(t, "trace with eBPF, as pxq demo does")
	stdout, stderr, err := runPXQ(t, "demo", "--duration", "3s")
	t.Logf("stderr:\n%s", stderr)
	if err != nil {
		t.Fatalf("pxq demo: %v\n%s", err, stdout)
	}
	if strings.Contains(stderr, "shipped inside pxq") {
		t.Fatalf("pxq demo fell back to the shipped capture as root")
	}
	if !strings.Contains(stderr, "requests in") {
		t.Errorf("no load generator report on stderr")
	}
	checkDemoOutput(t, stdout)
	// The load generator's own requests are there, from the client side.
	if !strings.Contains(stdout, "pxq demo-app loadgen") && !strings.Contains(stdout, "pxq demo-app checkout") {
		t.Errorf("no client-side rows in http_data\n%s", stdout)
	}
}

// TestDemoOffline runs `pxq demo --offline`, which needs no privilege.
func TestDemoOffline(t *testing.T) {
	stdout, stderr, err := runPXQ(t, "demo", "--offline")
	if err != nil {
		t.Fatalf("pxq demo --offline: %v\n%s", err, stderr)
	}
	checkDemoOutput(t, stdout)
}

// TestExitCodes checks the documented exit codes.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pxl")
	os.WriteFile(bad, []byte("import px\ndf = px.DataFrame(table='http_events')\ndf = df[df.no_such_column == 1]\npx.display(df)\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"version"}, 0},
		{[]string{"run", "px/http_data", "-o", "yaml"}, 2},
		{[]string{"no-such-command"}, 2},
		{[]string{"run", "px/no_such_script"}, 2},
		{[]string{"run", bad}, 3},
		{[]string{"run", "px/http_data", "--capture", filepath.Join(dir, "missing")}, 1},
	} {
		_, stderr, err := runPXQ(t, c.args...)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Errorf("pxq %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, stderr)
		}
	}
}
