package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/demo"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/scripts"
)

// TestHandlerOnCapture serves px/http_request_stats over the demo capture
// and checks the exposition.
func TestHandlerOnCapture(t *testing.T) {
	c, err := capture.Open(filepath.Join("..", "demo", demo.ShippedDir))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Meta: c.Metadata(nil)}) // the capture names its processes
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(eng.Store()); err != nil {
		t.Fatal(err)
	}
	end := c.Manifest.EndNS
	s, err := scripts.NewLibrary().Get("px/http_request_stats")
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	run := func(ctx context.Context) ([]*format.Table, error) {
		runs++
		return eng.Collect(ctx, engine.Query{Script: s, Now: time.Unix(0, end+int64(time.Second))})
	}
	fail := func(context.Context) ([]*format.Table, error) { return nil, errors.New("boom") }
	h := Handler([]Source{{Script: "px/http_request_stats", Run: run}, {Script: "broken", Run: fail}}, Options{CacheFor: time.Minute})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func() string {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	body := get()
	for _, want := range []string{
		// The load generator sent 40 requests/s to the frontend for 6 s.
		`pxq_http_request_stats_requests{endpoint="pxq-demo.slice/frontend.service",script="px/http_request_stats"} 240`,
		`# TYPE pxq_http_request_stats_latency_p99_seconds gauge`,
		`pxq_http_request_stats_bytes{endpoint="pxq-demo.slice/catalog.service",script="px/http_request_stats"}`,
		`pxq_status_codes_requests{resp_status="503",script="px/http_request_stats"}`,
		`pxq_script_up{script="px/http_request_stats"} 1`,
		`pxq_script_up{script="broken"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	get()
	if runs != 1 {
		t.Errorf("the script ran %d times for two scrapes within CacheFor", runs)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{"http_data": "http_data", "p99 (ms)": "p99__ms_", "9lives": "_9lives", "": "_"} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}
