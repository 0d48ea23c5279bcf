package main

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLive runs `pxq live` for a few iterations with Prometheus export
// and scrapes /metrics while it runs.
func TestLive(t *testing.T) {
	cmd := exec.Command(pxqBinary(t), "live", "px/process_stats", "--every", "300ms", "--iterations", "8",
		"--metrics-addr", "127.0.0.1:0")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	url := startAnnounced(t, cmd, `metrics on (http://\S+/metrics)`)
	// Scrape until the first /proc sample shows (or pxq stops).
	c := &http.Client{Timeout: 5 * time.Second}
	var body []byte
	for range 40 {
		resp, err := c.Get(url)
		if err != nil {
			break
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "pxq_process_stats_samples{") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pxq live: %v", err)
	}
	if !strings.Contains(string(body), `pxq_script_up{script="px/process_stats"} 1`) {
		t.Errorf("scrape:\n%s", body)
	}
	if !strings.Contains(string(body), `pxq_process_stats_samples{`) {
		t.Errorf("no per-process gauge in the scrape:\n%s", body)
	}
	if n := strings.Count(stdout.String(), "pxq live px/process_stats"); n != 8 {
		t.Errorf("%d redraws, want 8\n%s", n, stdout.String())
	}
}

// TestCapture records the host briefly and replays the capture.
func TestCapture(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cap")
	if _, stderr, err := runPXQ(t, "capture", dir, "--duration", "1500ms", "--proc-period", "500ms"); err != nil {
		t.Fatalf("pxq capture: %v\n%s", err, stderr)
	}
	stdout, stderr, err := runPXQ(t, "run", "px/process_stats", "--capture", dir)
	if err != nil {
		t.Fatalf("pxq run --capture: %v\n%s", err, stderr)
	}
	if rows := tableRows(stdout); rows["process_stats"] == 0 {
		t.Errorf("no process_stats rows from the capture\n%s", stdout)
	}
}

// TestHelpHasExamples checks that the embedded-mode commands document
// examples in their --help.
func TestHelpHasExamples(t *testing.T) {
	mine := map[string]bool{"demo": true, "live": true, "capture": true, "completion": true, "run": true,
		"scripts": true, "schemas": true, "explain": true, "version": true}
	for _, c := range rootCmd.Commands() {
		if c.Hidden || !mine[c.Name()] {
			continue
		}
		if c.Example == "" && !c.HasSubCommands() {
			t.Errorf("pxq %s has no examples in its --help", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Example == "" {
				t.Errorf("pxq %s %s has no examples in its --help", c.Name(), sub.Name())
			}
		}
	}
}

// TestServeMetrics runs pxq serve over the shipped capture with
// --metrics-addr and scrapes the default script's gauges.
func TestServeMetrics(t *testing.T) {
	cmd := exec.Command(pxqBinary(t), "serve", "--capture", "../../demo/testdata/capture", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--metrics-addr", "127.0.0.1:0")
	url := startAnnounced(t, cmd, `url=(http://\S+/metrics)`)
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`pxq_script_up{script="px/http_request_stats"} 1`,
		`pxq_http_request_stats_requests{endpoint="pxq-demo.slice/catalog.service",script="px/http_request_stats"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %s:\n%s", want, body)
		}
	}
}

// startAnnounced starts cmd and returns the first submatch of pattern in
// its stderr: the address pxq says it serves on. The rest of stderr is
// discarded. It fails the test if cmd ends without announcing one.
func startAnnounced(t *testing.T, cmd *exec.Cmd, pattern string) string {
	t.Helper()
	return startAnnouncedAll(t, cmd, pattern)[0]
}

// startAnnouncedAll is startAnnounced for several addresses, announced
// in the order of patterns.
func startAnnouncedAll(t *testing.T, cmd *exec.Cmd, patterns ...string) []string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := regexp.MustCompile(patterns[len(got)]).FindStringSubmatch(sc.Text()); m != nil {
			if got = append(got, m[1]); len(got) == len(patterns) {
				go io.Copy(io.Discard, stderr)
				return got
			}
		}
	}
	cmd.Wait()
	t.Fatalf("%s: no address announced on stderr", cmd.Args[1])
	return nil
}
