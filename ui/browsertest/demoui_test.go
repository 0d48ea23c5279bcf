package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/testenv"
)

// TestDemoUI runs `pxq demo --ui` as a user does (the replayed capture,
// and as root the traced demo) and checks that the page says where its
// data comes from and that "now" is frozen at the end of the demo's data,
// so that the scripts keep showing it however long the page is open.
func TestDemoUI(t *testing.T) {
	path := chromium(t)
	bin := filepath.Join(t.TempDir(), "pxq")
	build := exec.Command("go", "build", "-o", bin, "./cmd/pxq")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pxq: %v\n%s", err, out)
	}
	for _, mode := range []struct {
		name string
		args []string
		says string
	}{
		{"Replayed", []string{"--offline"}, "a capture of the demo"},
		{"Traced", nil, "traced by this run"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.args == nil && os.Geteuid() != 0 {
				testenv.SkipOrFail(t, "the traced demo needs root (eBPF)")
			}
			base, started := startDemo(t, bin, mode.args...)
			e := &env{t: t, ctx: newTab(t, path, 1400, 900), base: base, shots: shotsDir(t)}
			e.open("")
			note := e.eval(`document.getElementById('data-note').textContent`)
			if !strings.Contains(note, mode.says) || !strings.Contains(note, "now is frozen") {
				t.Errorf("data note %q", note)
			}
			rows := len(e.pageTable("http_data"))
			if rows == 0 {
				t.Fatal("px/http_data shows no rows")
			}
			// "now" does not move: the API reports the same instant, before
			// the UI came up, and a later run shows the same rows.
			now1 := demoNow(t, base)
			time.Sleep(1500 * time.Millisecond)
			n := e.runs()
			e.eval(`document.getElementById('run').click(), ''`)
			e.waitRun(n + 1)
			if now2 := demoNow(t, base); !now1.Equal(now2) || now1.After(started) {
				t.Errorf("now %v then %v; the UI started at %v", now1, now2, started)
			}
			if again := len(e.pageTable("http_data")); again != rows {
				t.Errorf("%d rows, then %d", rows, again)
			}
			e.shot("demo_" + strings.ToLower(mode.name))
		})
	}
}

// startDemo runs `pxq demo --ui 127.0.0.1:0 ARGS` until the test ends
// and returns the UI's URL and when it came up.
func startDemo(t *testing.T, bin string, args ...string) (string, time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"demo", "--ui", "127.0.0.1:0"}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	re := regexp.MustCompile(`web UI: (http://[^/ ]+/)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatalf("pxq demo ended without serving the UI:\n%s", stderr.String())
		}
		return u, time.Now()
	case <-time.After(90 * time.Second):
		t.Fatalf("pxq demo did not serve the UI in 90 s:\n%s", stderr.String())
	}
	return "", time.Time{}
}

// demoNow asks the UI's API for the "now" of its queries.
func demoNow(t *testing.T, base string) time.Time {
	resp, err := http.Get(base + "api/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var in struct{ Now string }
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		t.Fatal(err)
	}
	now, err := time.Parse(time.RFC3339Nano, in.Now)
	if err != nil {
		t.Fatalf("now %q: %v", in.Now, err)
	}
	return now
}
