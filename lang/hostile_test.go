package lang

import (
	"context"
	"errors"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/lang/langtest"
)

// hostileScript is a script of testdata/hostile with what it expects (see
// the README there).
type hostileScript struct {
	name   string
	src    string
	expect string // "ok": it compiles
	heapMB int    // 0: DefaultMaxMemory + 200 MB
}

func loadHostile(t testing.TB) []hostileScript {
	hs, err := langtest.LoadHostile("testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]hostileScript, len(hs))
	for i, h := range hs {
		out[i] = hostileScript{name: h.Name, src: h.Src, expect: h.Expect, heapMB: h.HeapMB}
	}
	return out
}

// heapSampler records the peak of the Go heap (objects live or not yet
// swept) while it runs.
type heapSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > s.peak {
			s.peak = v
		}
	}
	read()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				read()
				return
			case <-tick.C:
				read()
			}
		}
	}()
	return s
}

func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak
}

func heapObjects() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// TestHostileScripts compiles every script of testdata/hostile with the
// default limits: each ends with the error its header names, at a
// position of the script, in under 10 s, and the Go heap grows by less
// than the memory budget plus 200 MB.
func TestHostileScripts(t *testing.T) {
	for _, h := range loadHostile(t) {
		t.Run(h.name, func(t *testing.T) {
			if h.heapMB > 0 && testing.Short() && os.Getenv("CI") != "true" {
				t.Skip("a heavy script (it has its own heap bound) and -short (CI=true runs it)")
			}
			runtime.GC()
			base := heapObjects()
			sampler := startHeapSampler()
			start := time.Now()
			s, err := Parse(h.name, []byte(h.src))
			if err == nil {
				_, err = s.Compile(Options{Catalog: testCatalog{}, Now: testNow})
			}
			elapsed := time.Since(start)
			peak := sampler.Stop()
			grew := int64(peak) - int64(base)
			bound := int64(DefaultMaxMemory + 200<<20)
			if h.heapMB > 0 {
				bound = int64(h.heapMB) << 20
			}
			t.Logf("%v, heap +%d MB: %v", elapsed.Round(time.Millisecond), grew>>20, err)
			if grew > bound {
				t.Errorf("the heap grew by %d MB, more than %d MB", grew>>20, bound>>20)
			}
			if h.expect == "ok" {
				if err != nil {
					t.Fatalf("want a plan, got %v", err)
				}
				return
			}
			if elapsed > 10*time.Second {
				t.Errorf("took %v, want under 10 s", elapsed)
			}
			var le *Error
			if !errors.As(err, &le) {
				t.Fatalf("want a *lang.Error containing %q, got %T %v", h.expect, err, err)
			}
			if !strings.Contains(le.Msg, h.expect) {
				t.Errorf("error %q does not contain %q", le.Msg, h.expect)
			}
			if le.Line == 0 || le.File != h.name {
				t.Errorf("error %v has no position in the script", err)
			}
		})
	}
}

// TestLimitErrors checks that the errors of the limits wrap ErrLimit and
// that the limits are the options'.
func TestLimitErrors(t *testing.T) {
	for _, c := range []struct {
		src   string
		opts  Options
		limit bool
		want  string
	}{
		{"import px\ns = 'x' * 2000000\n", Options{MaxMemory: 1 << 20}, true, "more than 1 MB"},
		{"import px\ns = 'x' * 2000000\npx.display(px.DataFrame('http_events'))\n", Options{MaxMemory: 4 << 20}, false, ""},
		{"import px\nfor i in range(4):\n  px.display(px.DataFrame('http_events'))\n", Options{MaxOutputs: 3}, true, "at most 3 outputs"},
		{"import px\nwhile True:\n  pass\n", Options{MaxSteps: 1000}, true, "too many steps"},
		{"import px\nx = {}['k']\n", Options{}, false, `key "k" not in dict`},
	} {
		_, err := compile(t, c.src, c.opts)
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
			continue
		}
		if got := errors.Is(err, ErrLimit); got != c.limit {
			t.Errorf("%q: errors.Is(err, ErrLimit) = %v, want %v", c.src, got, c.limit)
		}
	}
}

// TestVisOutputsCapped checks the cap on the frames vis functions return.
func TestVisOutputsCapped(t *testing.T) {
	src := "import px\ndef f():\n  return [px.DataFrame('http_events')] * 5\n"
	_, err := compile(t, src, Options{Calls: []FuncCall{{Func: "f"}}, MaxOutputs: 4})
	if err == nil || !strings.Contains(err.Error(), "at most 4 outputs") || !errors.Is(err, ErrLimit) {
		t.Fatalf("got %v", err)
	}
	if _, err := compile(t, src, Options{Calls: []FuncCall{{Func: "f"}}, MaxOutputs: 5}); err != nil {
		t.Fatal(err)
	}
}

// TestContextCancels checks that Options.Context ends a running script.
func TestContextCancels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := compile(t, "import px\nwhile True:\n  pass\n", Options{MaxSteps: 1 << 62, Context: ctx})
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the script stopped %v after it was cancelled", d)
	}
}
