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

	"github.com/pxq-dev/pxq/demo"
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
// processes, named by the cgroup units the demo runs them in, and that
// px/http_request_stats has a row for every service.
func checkDemoOutput(t *testing.T, stdout string) {
	t.Helper()
	rows := tableRows(stdout)
	if rows["http_data"] == 0 || rows["http_request_stats"] == 0 {
		t.Errorf("want rows in http_data and http_request_stats, got %v\n%s", rows, stdout)
	}
	if !strings.Contains(stdout, "Next steps:") {
		t.Errorf("output lacks the next steps\n%s", stdout)
	}
	endpoints := map[string]bool{}
	for _, f := range tableCells(stdout, "http_request_stats") {
		endpoints[f[0]] = true
	}
	for _, s := range demo.Services {
		if u := demoUnit(s); !endpoints[u] {
			t.Errorf("http_request_stats has no row of %s (has %v)\n%s", u, endpoints, stdout)
		}
	}
}

// demoUnit is the pod pxq demo's process name is in.
func demoUnit(name string) string { return demo.Slice + "/" + demo.UnitOf(name) }

var cellSep = regexp.MustCompile(`\s{2,}`)

// tableCells returns the cells of each row of the text table name.
func tableCells(out, name string) [][]string {
	var rows [][]string
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, name+" (") {
			continue
		}
		for _, r := range lines[min(i+3, len(lines)):] { // past the header and its rule
			if strings.TrimSpace(r) == "" {
				break
			}
			rows = append(rows, cellSep.Split(strings.TrimSpace(r), -1))
		}
		break
	}
	return rows
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
	if !strings.Contains(stderr, "each in cgroup "+demo.Slice+"/NAME.service") {
		t.Errorf("the demo's processes ran without cgroups of their own")
	}
	// The demo records both sides of a request: rows whose source is a
	// demo process (the client's).
	clients := 0
	for _, f := range tableCells(stdout, "http_data") {
		if len(f) > 2 && strings.HasPrefix(f[1], demo.Slice+"/") {
			clients++
		}
	}
	if clients == 0 {
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
