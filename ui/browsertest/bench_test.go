package browsertest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/ui"
)

// TestBenchUI measures, in Chromium over loopback, the time from RUN to
// a drawn 10,000-row table and to a drawn 20-series chart (medians of
// several runs), scrolling through the table, and the bundle's size.
// It runs only with PXQ_UI_BENCH=1 (make bench-ui) and prints a table
// for docs/performance.md.
func TestBenchUI(t *testing.T) {
	if os.Getenv("PXQ_UI_BENCH") != "1" {
		t.Skip("set PXQ_UI_BENCH=1 to run the UI benchmark")
	}
	path := chromium(t)
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// 12,000 requests over the last 60 s, 20 paths.
	end := time.Now()
	var rows []map[string]any
	for i := 0; i < 12000; i++ {
		// Each path has its own rate profile over the minute.
		frac := math.Pow(float64(i)/12000, 0.6+float64(i%20)/15)
		at := end.Add(-60*time.Second + time.Duration(frac*float64(60*time.Second)))
		p := fmt.Sprintf("/api/v1/resource-%02d", i%20)
		rows = append(rows, httpRow(at, 8080, "GET", p, "", 200, `{"ok":true,"n":`+fmt.Sprint(i)+`}`, int64(200_000+i%977*1000)))
	}
	appendRows(t, eng.Store().Table("http_events"), rows)
	now := end.Add(time.Second)
	lib := scripts.NewLibrary(filepath.Join("testdata", "scripts"))
	srv := httptest.NewServer(ui.Handler(ui.Config{Runner: eng, Library: lib, Now: func() time.Time { return now }}))
	defer srv.Close()
	ctx := newTab(t, path, 1400, 900)

	const runs = 7
	measure := func(query, ready string) []float64 {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"+query)); err != nil {
			t.Fatal(err)
		}
		var out []float64
		for i := 0; i < runs+1; i++ { // the first run warms up (loads Vega)
			js := `new Promise((resolve) => {
				const n = Number(document.body.dataset.runs || 0);
				const t0 = performance.now();
				const check = () => {
					if (Number(document.body.dataset.runs || 0) > n && document.body.dataset.state === 'done' && (` + ready + `)) {
						requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
					} else setTimeout(check, 1);
				};
				document.getElementById('run').click();
				check();
			})`
			c, cancel := context.WithTimeout(ctx, 60*time.Second)
			ms, err := chromedp.Run(c, chromedp.Evaluate[float64](js, chromedp.EvalAwaitPromise))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 {
				out = append(out, ms)
			}
		}
		return out
	}
	table := measure("?script=px/http_data&max_rows=10000",
		`document.querySelectorAll('.widget[data-output=http_data] .tr').length > 10 && window.pxq.views.get('http_data').t.rows === 10000`)
	chart := measure("?script=test/series20",
		`document.querySelectorAll('.widget[data-output=per_path] svg g.mark-line path').length >= 20`)

	if dir := os.Getenv("PXQ_UI_SHOTS"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "timeseries_20.png"), png, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// Scrolling: 60 jumps through the 10,000 rows; each draws the rows
	// in view and lays them out.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/?script=px/http_data&max_rows=10000")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.state === 'done'`)); err != nil {
		t.Fatal(err)
	}
	scroll, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => {
		const v = window.pxq.views.get('http_data');
		const times = [];
		for (let i = 0; i < 60; i++) {
			const t0 = performance.now();
			v.body.scrollTop = (i * 7919 % 10000) * 24;
			v.render(false);
			void v.rowsEl.lastChild.offsetTop; // style and layout of the new rows
			times.push(performance.now() - t0);
		}
		return times;
	})()`))
	if err != nil {
		t.Fatal(err)
	}

	// The engine alone, for the share of the server.
	s, _ := lib.Get("px/http_data")
	var engMs []float64
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		if _, err := eng.Collect(context.Background(), engine.Query{Script: s, Args: map[string]string{"max_rows": "10000"}, Now: now}); err != nil {
			t.Fatal(err)
		}
		engMs = append(engMs, float64(time.Since(t0).Microseconds())/1000)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| measure | median of %d | min | max |\n|---|---|---|---|\n", runs)
	row := func(name string, v []float64) {
		sort.Float64s(v)
		fmt.Fprintf(&b, "| %s | %.0f ms | %.0f ms | %.0f ms |\n", name, v[len(v)/2], v[0], v[len(v)-1])
	}
	row("RUN → 10,000-row table drawn (px/http_data, max_rows=10000)", table)
	row("  of which the engine alone (Collect, same query)", engMs)
	row("RUN → 20-series time series drawn (1,200 points, SVG)", chart)
	sort.Float64s(scroll)
	fmt.Fprintf(&b, "| table scroll: a jump to a random row (rows drawn and laid out) | %.1f ms (p50 of 60) | %.1f ms | %.1f ms |\n", scroll[len(scroll)/2], scroll[0], scroll[len(scroll)-1])
	raw, gz, mainRaw, mainGz := bundleSize(t)
	fmt.Fprintf(&b, "\nBundle: %d KiB in ui/dist/assets (%d KiB gzipped); loaded for the first table: main.js %d KiB (%d KiB gzipped); Vega comes as chunks on the first chart.\n",
		raw>>10, gz>>10, mainRaw>>10, mainGz>>10)
	t.Log("\n" + b.String())
}

// bundleSize returns the size of ui/dist/assets, raw and gzipped, and of
// main.js (with style.css and index.html: what a table-only page loads).
func bundleSize(t *testing.T) (raw, gz, mainRaw, mainGz int) {
	dir := filepath.Join("..", "dist")
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".txt") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		w.Write(b)
		w.Close()
		raw += len(b)
		gz += buf.Len()
		switch filepath.Base(p) {
		case "main.js", "style.css", "index.html":
			mainRaw += len(b)
			mainGz += buf.Len()
		}
		return nil
	})
	return
}
