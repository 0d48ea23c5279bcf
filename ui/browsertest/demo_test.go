package browsertest

import (
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/demo"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/ui"
)

// TestDemoCapture opens library scripts with a graph and a bar chart over
// the capture shipped with pxq (recorded from a real, traced `pxq demo`:
// five services calling each other, one of them over gRPC).
func TestDemoCapture(t *testing.T) {
	path := chromium(t)
	c, err := capture.Open(filepath.Join("..", "..", "demo", demo.ShippedDir))
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
	now := time.Unix(0, end+int64(time.Second))
	srv := httptest.NewServer(ui.Handler(ui.Config{Runner: eng, Library: scripts.NewLibrary(), Now: func() time.Time { return now }}))
	defer srv.Close()
	e := &env{t: t, ctx: newTab(t, path, 1400, 900), base: srv.URL + "/", shots: shotsDir(t)}

	e.open("?script=px/http_graph")
	e.do(chromedp.WaitVisible(chromedp.CSS(`svg.graph`)))
	edges, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('svg.graph path.edge').length)`))
	nodes, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('svg.graph g.node').length)`))
	rows := len(e.pageTable("edges"))
	if edges != rows || nodes < 4 {
		t.Errorf("graph: %d edges for %d rows, %d nodes", edges, rows, nodes)
	}
	if colored := e.eval(`String(document.querySelectorAll('svg.graph path.edge.high, svg.graph path.edge.medium').length)`); colored == "0" {
		t.Error("no edge over an error-rate threshold (the demo has failing services)")
	}
	e.shot("graph")

	e.open("?script=px/http_request_stats")
	e.do(chromedp.WaitVisible(chromedp.CSS(`.widget[data-type=BarChart] svg g.mark-rect path`)))
	bars, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('.widget[data-type=BarChart] svg g.mark-rect path').length)`))
	if bars == 0 {
		t.Error("no bars")
	}
	e.shot("request_stats")
}
