package browsertest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
	"github.com/pxq-dev/pxq/ui"
)

// flameFrame is a frame as the page draws it.
type flameFrame struct {
	Path   string  `json:"path"`
	Name   string  `json:"name"`
	Width  float64 `json:"width"`
	Change string  `json:"change"`
	Dim    bool    `json:"dim"`
	Match  bool    `json:"match"`
}

// TestFlameGraph draws the StackTraceFlameGraph widget over a table of
// stacks and counts (the columns of stack_traces.beta) built here, in
// two windows, and checks widths, zoom, search and the colours of the
// comparison against sums computed from the rows.
func TestFlameGraph(t *testing.T) {
	path := chromium(t)
	eng, err := engine.New(engine.Config{Meta: metadata.None{}})
	if err != nil {
		t.Fatal(err)
	}
	rel := types.Relation{
		{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS},
		{Name: "window", Type: types.String},
		{Name: "stack_trace", Type: types.String},
		{Name: "count", Type: types.Int64},
	}
	tb, err := eng.Store().Create("flame_stacks", rel, table.Options{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Stacks of a small program: main calls work (which calls hash and
	// sort) and io; "hash" appears under two callers. The later window
	// spends more in hash.
	stacks := []string{
		"runtime.main;main.main;main.work;main.hash",
		"runtime.main;main.main;main.work;main.sort;sort.pdqsort",
		"runtime.main;main.main;main.work;main.sort;main.hash",
		"runtime.main;main.main;main.io;syscall.read",
		"runtime.main;main.main;main.io",
		"runtime.gcBgMarkWorker;runtime.gcDrain",
	}
	rnd := rand.New(rand.NewSource(1))
	now := time.Now()
	var rows []map[string]any
	counts := map[string]map[string]int64{"before": {}, "after": {}}
	for _, w := range []string{"before", "after"} {
		for i, s := range stacks {
			for k := 0; k < 3; k++ { // several rows per stack, summed by the script
				c := int64(5 + rnd.Intn(40))
				if w == "after" && strings.HasSuffix(s, "main.hash") {
					c *= 4
				}
				if i == 5 && k > 0 {
					continue
				}
				counts[w][s] += c
				rows = append(rows, map[string]any{"time_": now.Add(-time.Minute).UnixNano(), "window": w, "stack_trace": s, "count": c})
			}
		}
	}
	appendRows(t, tb, rows)
	// prefix sums: samples under each frame path, per window
	under := func(w string) (map[string]int64, int64) {
		m := map[string]int64{}
		var total int64
		for s, c := range counts[w] {
			parts := strings.Split(s, ";")
			for i := range parts {
				m[strings.Join(parts[:i+1], ";")] += c
			}
			total += c
		}
		return m, total
	}
	after, totalAfter := under("after")
	before, totalBefore := under("before")

	lib := scripts.NewLibrary(filepath.Join("testdata", "scripts"))
	srv := httptest.NewServer(ui.Handler(ui.Config{Runner: eng, Library: lib, Now: func() time.Time { return now }}))
	defer srv.Close()
	e := &env{t: t, ctx: newTab(t, path, 1400, 1000), base: srv.URL + "/", shots: shotsDir(t)}
	e.open("?script=test/flame")
	e.poll(`document.querySelectorAll('.widget[data-output=diff] .fg-frame').length > 0 && document.querySelectorAll('.widget[data-output=flame] .fg-frame').length > 0`)
	frames := func(out string) map[string]flameFrame {
		var list []flameFrame
		js := fmt.Sprintf(`JSON.stringify([...document.querySelectorAll('.widget[data-output=%s] .fg-frame')].map(f => ({path: f.dataset.path, name: f.dataset.name, width: f.getBoundingClientRect().width + 1, change: f.dataset.change || '', dim: f.classList.contains('dim'), match: f.classList.contains('match')})))`, out)
		if err := json.Unmarshal([]byte(e.eval(js)), &list); err != nil {
			t.Fatal(err)
		}
		m := map[string]flameFrame{}
		for _, f := range list {
			m[f.Path] = f
		}
		return m
	}
	// Widths: each frame's share of the root's width is its share of the
	// samples (within a pixel).
	checkWidths := func(fs map[string]flameFrame, rootPath string, want map[string]int64) {
		t.Helper()
		root, ok := fs[rootPath]
		if !ok {
			t.Fatalf("no frame %q", rootPath)
		}
		n := 0
		for p, c := range want {
			if rootPath != "" && !strings.HasPrefix(p, rootPath) {
				continue
			}
			f, ok := fs[p]
			if !ok {
				t.Errorf("frame %s is not drawn", p)
				continue
			}
			base := want[rootPath]
			if rootPath == "" {
				base = totalAfter
			}
			if exp := root.Width * float64(c) / float64(base); math.Abs(f.Width-exp) > 1.5 {
				t.Errorf("frame %s: %.1f px, want %.1f (%d of %d samples)", p, f.Width, exp, c, base)
			}
			n++
		}
		if n < 5 {
			t.Errorf("checked %d frames only", n)
		}
	}
	fs := frames("flame")
	checkWidths(fs, "", after)

	// Zoom into main.work: it fills the width, its callers are dimmed.
	work := "runtime.main;main.main;main.work"
	e.do(chromedp.Click(chromedp.CSS(`.widget[data-output=flame] .fg-frame[data-path="` + work + `"]`)))
	fs = frames("flame")
	if !fs["runtime.main"].Dim || fs[work].Dim {
		t.Errorf("after zooming: runtime.main dim=%v, main.work dim=%v", fs["runtime.main"].Dim, fs[work].Dim)
	}
	if _, drawn := fs["runtime.main;main.main;main.io"]; drawn {
		t.Error("a frame beside the zoomed one is still drawn")
	}
	checkWidths(fs, work, after)
	e.shot("flame_zoom")
	e.do(chromedp.Click(chromedp.CSS(`.widget[data-output=flame] .fg-reset`)))

	// Search: the frames named main.hash are marked; the share matched is
	// the samples under them.
	e.do(chromedp.SendKeys(chromedp.CSS(`.widget[data-output=flame] .fg-search`), "main.hash"))
	fs = frames("flame")
	var wantMatched int64
	marked := 0
	for p, f := range fs {
		isHash := strings.HasSuffix(p, "main.hash")
		if f.Match != isHash {
			t.Errorf("frame %s: match=%v", p, f.Match)
		}
		if isHash {
			marked++
			wantMatched += after[p]
		}
	}
	if got := e.eval(`document.querySelector('.widget[data-output=flame] .fg-info').dataset.matched`); marked != 2 || got != fmt.Sprint(wantMatched) {
		t.Errorf("%d frames marked, %s samples matched, want 2 and %d", marked, got, wantMatched)
	}
	e.shot("flame_search")

	// Two windows: a frame whose share of the samples grew is red
	// (change > 0), one whose share fell is blue (change < 0).
	fs = frames("diff")
	checkWidths(fs, "", after)
	checked := 0
	for p, f := range fs {
		if p == "" {
			continue
		}
		d := float64(after[p])/float64(totalAfter) - float64(before[p])/float64(totalBefore)
		if math.Abs(d) < 0.01 {
			continue
		}
		var change float64
		fmt.Sscan(f.Change, &change)
		if (d > 0) != (change > 0) {
			t.Errorf("frame %s: share moved by %+.3f, drawn change %s", p, d, f.Change)
		}
		checked++
	}
	if checked < 3 {
		t.Errorf("only %d frames changed enough to check", checked)
	}
	if info := e.eval(`document.querySelector('.widget[data-output=diff] .fg-info').textContent`); !strings.Contains(info, "after against before") {
		t.Errorf("diff info %q", info)
	}
	// Pixie's differenceColumn: a frame's colour follows the sign of the
	// summed change of the stacks under it.
	e.poll(`document.querySelectorAll('.widget[data-output=delta] .fg-frame').length > 0`)
	fs = frames("delta")
	checkWidths(fs, "", after)
	signs := 0
	for p, f := range fs {
		if p == "" {
			continue
		}
		d := after[p] - before[p]
		var change float64
		fmt.Sscan(f.Change, &change)
		if d != 0 && (d > 0) != (change > 0) {
			t.Errorf("frame %s: change %d, drawn %s", p, d, f.Change)
		}
		signs++
	}
	if signs < 5 {
		t.Errorf("checked %d frames of the difference graph", signs)
	}
	e.shot("flame_diff")
}
