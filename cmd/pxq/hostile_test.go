package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/client"
	"github.com/pxq-dev/pxq/lang/langtest"
)

// hostileServe are the limits of the server the hostile scripts are sent
// to: a hostile script and a normal query fit its query memory.
var hostileServe = []string{"--script-memory", "256MiB", "--query-memory", "256MiB", "--total-query-memory", "512MiB",
	"--max-concurrent-queries", "4"}

// hostileMemLimit is the server's soft memory limit (GOMEMLIMIT), and
// hostileRSSLimit the bound on its peak RSS: the soft limit plus what the
// Go runtime overshoots it by while the GC is starved of CPU (peaks of
// 646-769 MiB were measured on a 2-core machine at load average 10+).
const (
	hostileMemLimit = 640 << 20
	hostileRSSLimit = 896 << 20
)

// hostileTime bounds the time a hostile script takes on any path to be
// stopped by a budget or a limit. The legitimate heavy scripts of the
// corpus (expect: ok) do their work instead, whose time is the machine's:
// the 10 MB script took 10.1 s on a loaded 2-core CI machine, two scripts
// at a time. They get heavyTime, which still catches a hang.
const (
	hostileTime = 10 * time.Second
	heavyTime   = 30 * time.Second
)

// timeLimit is the bound on a script that should end as want says.
func timeLimit(want string) time.Duration {
	if want == "ok" {
		return heavyTime
	}
	return hostileTime
}

// TestHostileScripts sends every script of lang's hostile corpus through
// `pxq run`, through `pxq serve` over the Go client and over Pixie's
// API, and through the web UI's run endpoint of the same server. Each
// ends with the error its header names in under 10 s (or answers, for
// the heavy but legitimate ones, in under 30 s); a normal query sent
// meanwhile answers;
// the server's peak RSS stays under its limit.
func TestHostileScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the hostile corpus takes minutes")
	}
	corpus, err := langtest.LoadHostile(langtest.HostileDir("../.."))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("run", func(t *testing.T) { hostileRun(t, corpus) })
	t.Run("serve", func(t *testing.T) { hostileServer(t, corpus) })
}

// hostileRun runs each script with `pxq run`, two at a time.
func hostileRun(t *testing.T, corpus []langtest.Hostile) {
	dir := t.TempDir()
	events := writeEvents(t, 1000)
	each(corpus, 2, func(h langtest.Hostile) {
		path := filepath.Join(dir, h.Name)
		if err := os.WriteFile(path, []byte(h.Src), 0o644); err != nil {
			t.Error(err)
			return
		}
		start := time.Now()
		cmd := exec.Command(pxqBinary(t), "run", path, "--table", "http_events="+events)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		took := time.Since(start)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Errorf("%s: %v", h.Name, err)
			return
		}
		msg := strings.TrimSpace(stderr.String())
		switch {
		case h.Expect == "ok" && code != 0:
			t.Errorf("%s: exit %d: %s", h.Name, code, msg)
		case h.Expect != "ok" && (code != exitCompile || !strings.Contains(msg, h.Expect) || !strings.Contains(msg, h.Name+":")):
			t.Errorf("%s: exit %d, stderr %q, want exit %d with %q at a position", h.Name, code, msg, exitCompile, h.Expect)
		case took > timeLimit(h.Expect):
			t.Errorf("%s: took %v", h.Name, took)
		}
	})
}

// hostileServer sends each script to one pxq serve over its three
// paths, one after the other, while a normal query runs every 200 ms.
func hostileServer(t *testing.T, corpus []langtest.Hostile) {
	args := append([]string{"serve", "--table", "http_events=" + writeEvents(t, 1000), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}, hostileServe...)
	cmd := exec.Command(pxqBinary(t), args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%d", hostileMemLimit))
	addrs := startAnnouncedAll(t, cmd, `gRPC API" addr=(\S+)`, `web UI" url=(\S+)`)
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	c, err := client.Dial(addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pixie := dialPixie(t, addrs[0])
	runURL := strings.TrimSuffix(addrs[1], "/") + "/api/run"

	stop := make(chan struct{})
	normals := make(chan time.Duration, 1)
	go func() { normals <- normalQueries(t, c, stop) }()

	paths := []struct {
		name string
		run  func(ctx context.Context, src string) (ok bool, msg string)
	}{
		{"go client", func(ctx context.Context, src string) (bool, string) {
			_, err := c.Execute(ctx, client.Query{PxL: src})
			return err == nil, errMsg(err)
		}},
		{"pixie", func(ctx context.Context, src string) (bool, string) {
			_, err := runPixie(ctx, pixie, src)
			return err == nil, errMsg(err)
		}},
		{"ui", func(ctx context.Context, src string) (bool, string) {
			return postRun(ctx, runURL, src)
		}},
	}
	var mu sync.Mutex
	slowest := map[string]time.Duration{}
	each(corpus, 1, func(h langtest.Hostile) {
		for _, p := range paths {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			start := time.Now()
			ok, msg := p.run(ctx, h.Src)
			took := time.Since(start)
			cancel()
			mu.Lock()
			slowest[p.name] = max(slowest[p.name], took)
			mu.Unlock()
			want := h.Expect
			if len(h.Src) > 4<<20 {
				// Past gRPC's 4 MiB message and the UI's 1 MiB body.
				want = "larger than max"
				if p.name == "ui" {
					want = "too large"
				}
			} else if len(h.Src) > 1<<20 && p.name == "ui" {
				want = "too large"
			}
			switch {
			case want == "ok" && !ok:
				t.Errorf("%s over %s: %s", h.Name, p.name, msg)
			case want != "ok" && (ok || !strings.Contains(msg, want)):
				t.Errorf("%s over %s: ok %v, %q, want %q", h.Name, p.name, ok, msg, want)
			case took > timeLimit(want):
				t.Errorf("%s over %s: took %v", h.Name, p.name, took)
			}
		}
	})
	close(stop)
	worst := <-normals
	hwm, rss := procMemory(t, cmd.Process.Pid)
	t.Logf("slowest hostile script by path %v; slowest normal query meanwhile %v; server VmHWM %d MiB, VmRSS %d MiB (limit %d MiB)",
		slowest, worst, hwm>>20, rss>>20, hostileRSSLimit>>20)
	if hwm > hostileRSSLimit {
		t.Errorf("the server's peak RSS %d MiB is over %d MiB", hwm>>20, hostileRSSLimit>>20)
	}
}

// normalQueries runs a normal query every 200 ms until stop and returns
// the slowest answer. Each must answer.
func normalQueries(t *testing.T, c *client.Client, stop <-chan struct{}) time.Duration {
	var worst time.Duration
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return worst
		case <-tick.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.Execute(ctx, client.Query{PxL: normal})
		cancel()
		worst = max(worst, time.Since(start))
		if err != nil || len(res.Tables) != 1 || res.Tables[0].Rows() == 0 {
			t.Errorf("a normal query beside the hostile ones: %v", err)
		}
	}
}

// postRun sends a script to the UI's run endpoint: ok when it answers
// 200, else the error's message.
func postRun(ctx context.Context, url, src string) (bool, string) {
	body, _ := json.Marshal(map[string]string{"pxl": src})
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return false, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	json.Unmarshal(b, &e)
	return false, fmt.Sprintf("%d: %s", resp.StatusCode, e.Error.Message)
}

func errMsg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// each calls f for every script, n at a time.
func each(corpus []langtest.Hostile, n int, f func(langtest.Hostile)) {
	work := make(chan langtest.Hostile)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				f(h)
			}
		}()
	}
	for _, h := range corpus {
		work <- h
	}
	close(work)
	wg.Wait()
}

// procMemory returns a process's peak and current resident memory.
func procMemory(t *testing.T, pid int) (hwm, rss int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			hwm = kb << 10
		case "VmRSS:":
			rss = kb << 10
		}
	}
	return hwm, rss
}
