package oteltest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/pxq-dev/pxq/internal/testenv"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// TestMain removes the binaries the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds the test Collector (./otelcol) and pxq once per run of
// the tests; the Go build cache makes later runs quick.
func binaries(t *testing.T) (collector, pxq string) {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "pxq-oteltest-"); buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{{"otelcol", "./otelcol"}, {"pxq", "github.com/pxq-dev/pxq/cmd/pxq"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		if _, err := exec.LookPath("go"); err != nil {
			testenv.SkipOrFailf(t, "no go command to build the Collector with: %v", err)
		}
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "otelcol"), filepath.Join(binDir, "pxq")
}

// collector is a running test Collector.
type collector struct {
	t          *testing.T
	bin, dir   string
	GRPC, HTTP string // host:port of the OTLP receiver
	cmd        *exec.Cmd
	log        *syncBuffer
}

// syncBuffer is the Collector's log, written by its output's copier
// and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCollector runs a Collector whose OTLP receiver listens on
// 127.0.0.1 (on the ports of c when restarting) and whose file exporters
// write metrics.json and traces.json in a folder of the test.
func startCollector(t *testing.T) *collector {
	t.Helper()
	bin, _ := binaries(t)
	c := &collector{t: t, bin: bin, dir: t.TempDir(), GRPC: freePort(t), HTTP: freePort(t)}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

const collectorConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
exporters:
  debug:
    verbosity: basic
  file/metrics:
    path: %s
    flush_interval: 50ms
  file/traces:
    path: %s
    flush_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [file/metrics, debug]
    traces:
      receivers: [otlp]
      exporters: [file/traces, debug]
`

// start runs the Collector and waits until both receivers accept
// connections.
func (c *collector) start() {
	t := c.t
	t.Helper()
	cfg := filepath.Join(c.dir, "config.yaml")
	body := fmt.Sprintf(collectorConfig, c.GRPC, c.HTTP, filepath.Join(c.dir, "metrics.json"), filepath.Join(c.dir, "traces.json"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c.log = &syncBuffer{}
	c.cmd = exec.Command(c.bin, "--config", "file:"+cfg)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range []string{c.GRPC, c.HTTP} {
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				c.stop()
				t.Fatalf("the Collector does not listen on %s: %v\n%s", addr, err, c.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// stop ends the Collector (SIGTERM, so that its exporters flush).
func (c *collector) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

// metrics returns what the Collector wrote to metrics.json so far.
func (c *collector) metrics() []pmetric.Metrics {
	var out []pmetric.Metrics
	var u pmetric.JSONUnmarshaler
	c.lines("metrics.json", func(b []byte) error {
		m, err := u.UnmarshalMetrics(b)
		out = append(out, m)
		return err
	})
	return out
}

// traces returns what the Collector wrote to traces.json so far.
func (c *collector) traces() []ptrace.Traces {
	var out []ptrace.Traces
	var u ptrace.JSONUnmarshaler
	c.lines("traces.json", func(b []byte) error {
		tr, err := u.UnmarshalTraces(b)
		out = append(out, tr)
		return err
	})
	return out
}

func (c *collector) lines(name string, f func([]byte) error) {
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		c.t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("}")) {
			break // being written
		}
		if err := f(line); err != nil {
			c.t.Fatalf("%s: %v: %.200s", name, err, line)
		}
	}
}

// wait polls what the Collector wrote until cond holds, or fails the
// test after a minute.
func (c *collector) wait(what string, cond func(points, spans int) bool) ([]pmetric.Metrics, []ptrace.Traces) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ms, ts := c.metrics(), c.traces()
		p, s := 0, 0
		for _, m := range ms {
			p += m.DataPointCount()
		}
		for _, tr := range ts {
			s += tr.SpanCount()
		}
		if cond(p, s) {
			return ms, ts
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting for %s: the Collector wrote %d points and %d spans\n%s", what, p, s, lastLines(c.log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastLines(b *syncBuffer, n int) string {
	if b == nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
