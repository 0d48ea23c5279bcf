package browsertest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/types"
	"github.com/pxq-dev/pxq/ui"
)

// TestFormatMatchesGo checks the page's semantic formatting against the
// format package's, value by value, ties and edge cases included.
func TestFormatMatchesGo(t *testing.T) {
	path := chromium(t)
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui.Handler(ui.Config{Runner: eng, Library: scripts.NewLibrary()}))
	defer srv.Close()
	ctx := newTab(t, path, 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.Poll[chromedp.Void](`window.pxq && window.pxq.format`)); err != nil {
		t.Fatal(err)
	}
	type item struct {
		Kind string `json:"kind"`
		Sem  int    `json:"sem"`
		V    any    `json:"v"` // int64 as a decimal string
	}
	var items []item
	var want []string
	r := rand.New(rand.NewPCG(1, 2))
	addInt := func(v int64, sem types.SemanticType) {
		items = append(items, item{"int", int(sem), fmt.Sprint(v)})
		want = append(want, format.Cell(v, sem))
	}
	addFloat := func(v float64, sem types.SemanticType) {
		items = append(items, item{"float", int(sem), v})
		want = append(want, format.Cell(v, sem))
	}
	for _, v := range []int64{0, 1, 999, 1000, 1500, 164500, 12250, 1125, 999500, 999999, 59_999_600_000, 60e9, 3725e9, -2500, 1 << 40} {
		addInt(v, types.STDurationNS)
		addInt(v, types.STBytes)
		addInt(v, types.STNone)
	}
	for i := 0; i < 400; i++ {
		d := int64(math.Exp(r.Float64() * 28)) // 1 ns … ~45 min
		addInt(d, types.STDurationNS)
		addInt(d*7/3, types.STBytes)
		addFloat(float64(d)/7, types.STDurationNS)
		addFloat(r.Float64(), types.STPercent)
		addFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(24)-12)), types.STNone)
		addFloat(float64(r.IntN(1000))/8, types.STNone) // exact ties
		addFloat(r.Float64()*1e-6, types.STThroughputPerNS)
		addFloat(r.Float64()*1e-3, types.STThroughputBytesPerNS)
	}
	for _, v := range []float64{0, -0.5, 0.054, 1.0 / 3, 1e-5, 1.5e9 + 0.5, 12.5, 0.00012345, 1e15, 1e21, math.Inf(1), math.NaN()} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue // JSON cannot carry them
		}
		addFloat(v, types.STNone)
	}
	for _, ns := range []int64{0, 1_764_000_000_123_456_789, 1_764_000_000_999_999_999} {
		items = append(items, item{"time", 2, fmt.Sprint(ns)})
		want = append(want, format.Cell(time.Unix(0, ns), types.STTimeNS))
	}
	items = append(items, item{"string", 1001, `{"p10": 1000, "p50": 164500, "p90": 2e6, "p99": 3.5e9}`})
	want = append(want, format.Cell(`{"p10": 1000, "p50": 164500, "p90": 2e6, "p99": 3.5e9}`, types.STDurationNSQuantiles))
	items = append(items, item{"string", 3000, `{"label":"a <b>","script":"px/x","args":{}}`})
	want = append(want, format.Cell(`{"label":"a <b>","script":"px/x","args":{}}`, types.STScriptReference))

	js, _ := json.Marshal(items)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
		const { cell } = window.pxq.format;
		return `+string(js)+`.map((x) => {
			const v = x.kind === 'int' || x.kind === 'time' ? BigInt(x.v) : x.v;
			return cell(v, x.kind, x.sem);
		});
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad++; bad <= 20 {
				t.Errorf("%s %v (semantic %d): page %q, Go %q", items[i].Kind, items[i].V, items[i].Sem, got[i], want[i])
			}
		}
	}
	t.Logf("%d values compared, %d differ", len(want), bad)
}
