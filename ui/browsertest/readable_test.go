package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/ui"
)

// TestReadable checks the page as a new user meets it: the landing page,
// the theme, charts, graphs, live mode, entity suggestions and errors.
// One environment for every step; the entities come from the engine's
// own metadata (host entities), as in `pxq ui` and the demo.
func TestReadable(t *testing.T) {
	e := newEnvWith(t, func(c *ui.Config) { c.Entities = nil })
	dest := fmt.Sprintf("127.0.0.1:%d", e.appPort)
	t.Logf("data: traced=%v, app port %d", e.traced, e.appPort)

	t.Run("LandingOpensDefaultScript", func(t *testing.T) {
		e.t = t
		e.open("")
		if got := e.eval(`new URL(location.href).searchParams.get('script') + ' ' + document.querySelector('h1.title').textContent`); got != "px/http_data px/http_data" {
			t.Errorf("landing page: %q", got)
		}
		if n := len(e.pageTable("http_data")); n == 0 {
			t.Error("the default script shows no rows")
		}
	})

	t.Run("DarkThemeFollowsSystem", func(t *testing.T) {
		e.t = t
		lum := func() float64 {
			return luminance(e.eval(`getComputedStyle(document.body).backgroundColor`))
		}
		e.open("?script=test/ts_chart&dest=" + url.QueryEscape(dest))
		light := lum()
		media := func(v string) {
			if _, err := chromedp.Call(e.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}}}); err != nil {
				t.Fatal(err)
			}
		}
		media("dark")
		defer media("light")
		e.open("?script=test/ts_chart&dest=" + url.QueryEscape(dest))
		e.do(chromedp.WaitVisible(chromedp.CSS(`.widget[data-output=ts] svg .mark-line path`)))
		dark := lum()
		ink := luminance(e.eval(`getComputedStyle(document.querySelector('.td')).color`))
		axis := luminance(e.eval(`document.querySelector('.widget[data-type=TimeseriesChart] .role-axis-label text').getAttribute('fill')`))
		if light < 0.8 || dark > 0.2 || ink < 0.6 || axis < 0.5 {
			t.Errorf("luminance: light page %.2f, dark page %.2f, dark text %.2f, dark axis labels %.2f", light, dark, ink, axis)
		}
		e.shot("dark")
	})

	t.Run("HistogramBinned", func(t *testing.T) {
		e.t = t
		e.open("?script=test/histogram&dest=" + url.QueryEscape(dest))
		e.do(chromedp.WaitVisible(chromedp.CSS(`.widget[data-output=prebinned] svg g.mark-rect path`)))
		rows := e.pageTable("prebinned_rows")
		raw, _ := strconv.Atoi(e.eval(`String(window.pxq.state.layout.byOutput.get('raw')[0].note.textContent.split(' ')[0])`))
		bars := func(out string) int {
			n, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('.widget[data-output=` + out + `] svg g.mark-rect path').length)`))
			return n
		}
		// One bar per distinct value would be len(rows) bars.
		if len(rows) <= 6 || raw <= 8 {
			t.Fatalf("too few distinct latencies to bin: %d values, %d rows", len(rows), raw)
		}
		if b := bars("prebinned"); b < 2 || b > 6 {
			t.Errorf("prebinned histogram (maxbins 6) of %d values: %d bars", len(rows), b)
		}
		if b := bars("raw"); b < 2 || b > 8 {
			t.Errorf("histogram (maxbins 8) of %d rows: %d bars", raw, b)
		}
		// The bars' counts add up to the rows: read from their tooltips'
		// data (the bars' aria labels name the count).
		sum := 0
		for _, l := range strings.Split(e.eval(`[...document.querySelectorAll('.widget[data-output=prebinned] svg g.mark-rect path')].map(p => p.getAttribute('aria-label')).join('\n')`), "\n") {
			if m := regexp.MustCompile(`count: ([\d,]+)`).FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
				sum += n
			}
		}
		if sum != raw {
			t.Errorf("prebinned bars hold %d requests, the table %d", sum, raw)
		}
		e.shot("histogram")
	})

	t.Run("TimeAxesAndSinglePoints", func(t *testing.T) {
		e.t = t
		// Wide enough for several labels over the 1.5 s of traffic.
		e.do(chromedp.EmulateViewport(2400, 900))
		defer e.do(chromedp.EmulateViewport(1400, 900))
		e.open("?script=test/ts_chart&dest=" + url.QueryEscape(dest))
		e.do(chromedp.WaitVisible(chromedp.CSS(`.widget[data-output=ts] svg .mark-line path`)))
		labels := strings.Split(e.eval(`[...[...document.querySelector('.widget[data-type=TimeseriesChart]').querySelectorAll('.role-axis')].find(a => (a.getAttribute('aria-label') || '').startsWith('X-axis') && a.querySelector('.role-axis-label text')).querySelectorAll('.role-axis-label text')].map(t => t.textContent).join('\n')`), "\n")
		clock := regexp.MustCompile(`^\d\d:\d\d(:\d\d(\.\d{3})?)?$`)
		var ms []int64
		for _, l := range labels {
			if !clock.MatchString(l) {
				t.Errorf("time axis label %q (all: %q)", l, labels)
				continue
			}
			ms = append(ms, clockMS(l))
		}
		if len(ms) < 2 {
			t.Fatalf("time axis labels %q", labels)
		}
		step := ms[1] - ms[0]
		for i := 2; i < len(ms); i++ {
			if ms[i]-ms[i-1] != step {
				t.Errorf("uneven ticks %q", labels)
			}
		}
		if !niceStep(step) {
			t.Errorf("tick step %d ms (labels %q)", step, labels)
		}
		// An hour per point: each path is one point, drawn as a line.
		e.open("?script=test/ts_chart&window_ms=3600000&dest=" + url.QueryEscape(dest))
		e.do(chromedp.WaitVisible(chromedp.CSS(`.widget[data-output=ts] svg .mark-line path`)))
		paths := e.pageTable("ts")
		ds := strings.Split(e.eval(`[...document.querySelectorAll('.widget[data-output=ts][data-type=TimeseriesChart]')[0].querySelectorAll('g.mark-line path')].map(p => p.getAttribute('d')).join('\n')`), "\n")
		if len(ds) != len(paths) {
			t.Errorf("%d lines for %d series", len(ds), len(paths))
		}
		for _, d := range ds {
			if !strings.Contains(d, "L") {
				t.Errorf("a one-point series is not drawn as a line: d=%q", d)
			}
		}
		e.shot("single_points")
	})

	t.Run("LiveKeepsViewStateAndDebounces", func(t *testing.T) {
		e.t = t
		w := `.widget[data-output=http_data] `
		// Enough rows that the table scrolls: the app's traffic is
		// traced as the test goes, so open the page again until it has.
		for i := 0; ; i++ {
			e.open("?script=px/http_data&destination_filter=" + url.QueryEscape(dest))
			n, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('` + w + `.tr[data-row]').length)`))
			if n >= 20 {
				break
			}
			if i == 20 {
				t.Fatalf("the table has %d rows after 20 s, too few to scroll", n)
			}
			e.do(chromedp.Sleep(time.Second))
		}
		e.do(chromedp.Click(chromedp.CSS(w+`.th[data-col="6"] .th-name`)), chromedp.Click(chromedp.CSS(w+`.th[data-col="6"] .th-name`)))
		e.eval(`(() => { const b = document.querySelector('` + w + `.tbl-body'); b.scrollTop = 120; return ''; })()`)
		e.do(chromedp.Sleep(100 * time.Millisecond))
		if top := e.eval(`String(document.querySelector('` + w + `.tbl-body').scrollTop)`); top == "0" {
			t.Fatalf("the table does not scroll (scrollTop 0 after setting 120)")
		}
		row := e.eval(`document.querySelector('` + w + `.tr[data-row]:nth-child(8)').dataset.row`)
		e.do(chromedp.Click(chromedp.CSS(w + `.tr[data-row="` + row + `"] .td`)))
		before := e.eval(`document.querySelector('` + w + `.tbl-detail').innerText`)
		e.do(chromedp.Click(chromedp.ID("live")))
		n := e.runs()
		e.waitRun(n + 1) // the live box reruns at once
		e.eval(`window.pxq.tick(), ''`)
		e.waitRun(n + 2)
		state := e.eval(`(() => { const v = window.pxq.views.get('http_data'); return JSON.stringify([v.sort, v.body.scrollTop, v.selected >= 0, document.querySelector('` + w + `.tbl-detail').innerText, document.querySelector('` + w + `.th[data-col="6"]').innerText]); })()`)
		var got []any
		json.Unmarshal([]byte(state), &got)
		if len(got) != 5 || fmt.Sprint(got[0]) != "map[col:6 dir:-1]" || got[1].(float64) < 110 || got[2] != true || got[3] != before || !strings.HasSuffix(got[4].(string), "▼") {
			t.Errorf("after a live tick: %s (detail before %q)", state, before)
		}
		// Typing: a tick meanwhile runs with the last values, and one run
		// follows the pause.
		n = e.runs()
		e.do(chromedp.SendKeys(chromedp.CSS(`input[name=destination_filter]`), "9"))
		e.eval(`window.pxq.tick(), ''`)
		e.waitRun(n + 1)
		if v := e.eval(`window.pxq.state.committed.destination_filter`); v != dest {
			t.Errorf("a tick while typing ran with %q", v)
		}
		e.waitRun(n + 2)
		if v := e.eval(`window.pxq.state.committed.destination_filter`); v != dest+"9" {
			t.Errorf("after the pause, ran with %q", v)
		}
		e.do(chromedp.Sleep(1500 * time.Millisecond))
		if r := e.runs(); r != n+2 {
			t.Errorf("%d runs for one edit and one tick, want 2", r-n)
		}
		e.do(chromedp.Click(chromedp.ID("live")))
	})

	t.Run("GraphOptionalColumnsPanZoomDrag", func(t *testing.T) {
		e.t = t
		e.open("?script=test/graph&dest=" + url.QueryEscape(dest))
		e.do(chromedp.WaitVisible(chromedp.CSS(`svg.graph g.node`)))
		if n := e.eval(`String(document.querySelectorAll('.widget .banner.error').length)`); n != "0" {
			t.Fatalf("graph refused: %s", e.eval(`document.querySelector('.widget .banner.error').textContent`))
		}
		// Labels do not overlap each other.
		var boxes [][4]float64
		json.Unmarshal([]byte(e.eval(`JSON.stringify([...document.querySelectorAll('svg.graph g.node text')].map(t => { const r = t.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }))`)), &boxes)
		if len(boxes) < 4 {
			t.Fatalf("%d labels", len(boxes))
		}
		for i := range boxes {
			for j := i + 1; j < len(boxes); j++ {
				a, b := boxes[i], boxes[j]
				if a[0] < b[2]-1 && b[0] < a[2]-1 && a[1] < b[3]-1 && b[1] < a[3]-1 {
					t.Errorf("labels %d and %d overlap: %v %v", i, j, a, b)
				}
			}
		}
		// Drag a node by (+40, +30).
		var c [2]float64
		json.Unmarshal([]byte(e.eval(`JSON.stringify((() => { const r = document.querySelector('svg.graph g.node circle').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })())`)), &c)
		edgeBefore := e.eval(`[...document.querySelectorAll('svg.graph path.edge')].map(p => p.getAttribute('d')).join('|')`)
		e.drag(c[0], c[1], c[0]+40, c[1]+30)
		var c2 [2]float64
		json.Unmarshal([]byte(e.eval(`JSON.stringify((() => { const r = document.querySelector('svg.graph g.node circle').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })())`)), &c2)
		if math.Abs(c2[0]-c[0]-40) > 3 || math.Abs(c2[1]-c[1]-30) > 3 {
			t.Errorf("dragged node from %v to %v, want +40,+30", c, c2)
		}
		if e.eval(`[...document.querySelectorAll('svg.graph path.edge')].map(p => p.getAttribute('d')).join('|')`) == edgeBefore {
			t.Error("the edges did not follow the node")
		}
		// Zoom in with the wheel, then pan by dragging the background.
		var box [4]float64
		json.Unmarshal([]byte(e.eval(`JSON.stringify((() => { const r = document.querySelector('svg.graph').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })())`)), &box)
		x, y := box[0]+5, box[1]+5 // a corner: background
		// (CDP's wheel event needs a deltaX that its encoder omits when 0.)
		e.eval(fmt.Sprintf(`document.querySelector('svg.graph').dispatchEvent(new WheelEvent('wheel', {deltaY: -300, clientX: %f, clientY: %f, bubbles: true, cancelable: true})), ''`, x+box[2]/2, y+box[3]/2))
		e.do(chromedp.Sleep(100 * time.Millisecond))
		if z, _ := strconv.ParseFloat(e.eval(`document.querySelector('svg.graph').dataset.zoom`), 64); z <= 1.1 {
			t.Errorf("zoom after the wheel: %v", z)
		}
		tr := e.eval(`document.querySelector('svg.graph g.graph-view').getAttribute('transform')`)
		e.drag(x, y, x+50, y+20)
		if tr2 := e.eval(`document.querySelector('svg.graph g.graph-view').getAttribute('transform')`); tr2 == tr {
			t.Errorf("panning left the view at %s", tr2)
		}
		e.shot("graph_drag")
	})

	t.Run("EntitySuggestions", func(t *testing.T) {
		e.t = t
		e.open("?script=test/entities")
		pods := e.eng.Metadata().(interface{ Names(string) []string }).Names("pod")
		if len(pods) == 0 {
			t.Fatal("the host metadata names no pods")
		}
		e.do(chromedp.Focus(chromedp.CSS(`input[name=pod]`)))
		e.poll(`document.getElementById('entities-pod').dataset.loaded === '1'`)
		var got []string
		json.Unmarshal([]byte(e.eval(`JSON.stringify([...document.querySelectorAll('#entities-pod option')].map(o => o.value))`)), &got)
		have := map[string]bool{}
		for _, g := range got {
			have[g] = true
		}
		for _, p := range pods {
			if !have[p] {
				t.Errorf("pod %q not suggested (page has %d)", p, len(got))
			}
		}
		// The pods that the table shows are among the suggestions.
		for _, r := range e.pageTable("pods") {
			if !have[r[0]] {
				t.Errorf("the table's pod %q is not suggested", r[0])
			}
		}
		e.do(chromedp.Focus(chromedp.CSS(`input[name=namespace]`)))
		e.poll(`document.getElementById('entities-namespace').dataset.loaded === '1'`)
		if n := e.eval(`String(document.querySelectorAll('#entities-namespace option').length)`); n == "0" {
			t.Error("no namespaces suggested")
		}
	})

	t.Run("ErrorsWhereTheyBelong", func(t *testing.T) {
		e.t = t
		// A bad value: blamed on its variable, not on a line.
		e.open("?script=px/http_data&max_rows=12x")
		if st := e.eval(`document.body.dataset.state`); st != "error" {
			t.Errorf("state %q", st)
		}
		msg := e.eval(`document.querySelector('label[data-var=max_rows].bad .var-err').textContent`)
		banner := e.eval(`document.querySelector('.messages .banner.error').textContent`)
		if !strings.Contains(msg, `"12x" is not an integer`) || !strings.HasPrefix(banner, "Variable max_rows") || strings.Contains(banner, ".pxl:") {
			t.Errorf("variable error %q, banner %q", msg, banner)
		}
		if hidden := e.eval(`String(document.querySelector('.editor').hidden)`); hidden != "true" {
			t.Error("a bad variable opened the editor")
		}
		e.shot("variable_error")
		// No advice for the command line.
		e.do(chromedp.Navigate(e.base + "?script=px/no_such_script"))
		e.poll(`document.querySelectorAll('.messages .banner.error').length > 0`)
		if b := e.eval(`document.querySelector('.messages .banner.error').textContent`); strings.Contains(b, "pxq ") || strings.Contains(b, "--") || !strings.Contains(b, "no_such_script") {
			t.Errorf("unknown script: %q", b)
		}
		// A compile error puts the caret on the bad name.
		e.open("?script=px/http_data&edit=1")
		broken := "import px\n\n\ndef http_data(start_time: str, source_filter: str, destination_filter: str, max_rows: int):\n    df = px.DataFrame(table='http_events', start_time=start_time)\n    df.x = df.no_such_column + 1\n    return df\n"
		n := e.runs()
		e.do(chromedp.SetValue(chromedp.CSS(`textarea[aria-label="script.pxl"]`), broken), chromedp.Click(chromedp.ID("run")))
		e.waitRun(n + 1)
		sel := e.eval(`(() => { const a = document.querySelector('textarea[aria-label="script.pxl"]'); return a.value.slice(a.selectionStart, a.selectionEnd) + '|' + (document.activeElement === a); })()`)
		if sel != "no_such_column|true" {
			t.Errorf("caret selects %q", sel)
		}
	})

	t.Run("AsksForVariablesWithoutDefault", func(t *testing.T) {
		e.t = t
		runs := e.runs()
		e.do(chromedp.Navigate(e.base + "?script=test/needs_var"))
		e.poll(`document.body.dataset.state === 'needs-input'`)
		if st := e.eval(`document.querySelector('label[data-var=path]').className + '|' + (document.activeElement && document.activeElement.name)`); st != "var required bad|path" {
			t.Errorf("the page does not ask for path: %q", st)
		}
		if b := e.eval(`document.querySelector('.messages .banner').textContent`); !strings.Contains(b, "path") {
			t.Errorf("banner %q", b)
		}
		if r := e.runs(); r > runs && e.eval(`document.body.dataset.state`) != "needs-input" {
			t.Error("the page ran without the variable")
		}
		e.shot("needs_var")
		e.do(chromedp.SendKeys(chromedp.CSS(`input[name=path]`), "/api/slow"), chromedp.Click(chromedp.ID("run")))
		e.poll(`document.body.dataset.state === 'done'`)
		rows := e.pageTable("requests")
		want := e.engineText("test/needs_var", map[string]string{"path": "/api/slow"}, "requests")
		if len(rows) == 0 || len(rows) != len(want) {
			t.Errorf("with path set: %d rows, engine %d", len(rows), len(want))
		}
	})

	t.Run("ShadowedScriptMarked", func(t *testing.T) {
		e.t = t
		dir := t.TempDir()
		mine := filepath.Join(dir, "px", "http_data")
		os.MkdirAll(mine, 0o755)
		os.WriteFile(filepath.Join(mine, "http_data.pxl"), []byte("import px\npx.display(px.DataFrame(table='http_events').head(3), 'mine')\n"), 0o644)
		os.WriteFile(filepath.Join(mine, "manifest.yaml"), []byte("short: my own http_data\n"), 0o644)
		srv := httptest.NewServer(ui.Handler(ui.Config{Runner: e.eng, Library: scripts.NewLibrary(dir), Now: func() time.Time { return e.now }}))
		defer srv.Close()
		e.do(chromedp.Navigate(srv.URL + "/?script=px/http_data"))
		e.waitRun(1)
		items := e.eval(`[...document.querySelectorAll('ul.scripts li[data-name="px/http_data"]')].map(li => li.className + ':' + li.innerText.replace(/\n/g, ' ')).join('\n')`)
		lines := strings.Split(items, "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], "shadows") || !strings.Contains(lines[0], "my own http_data") || !strings.Contains(lines[1], "libcopy") {
			t.Errorf("list entries:\n%s", items)
		}
		if note := e.eval(`document.getElementById('shadow-note').textContent`); !strings.Contains(note, dir) {
			t.Errorf("shadow note %q", note)
		}
		if len(e.pageTable("mine")) != 3 {
			t.Error("the user's script did not run")
		}
		n := e.runs()
		e.do(chromedp.Click(chromedp.CSS(`ul.scripts li.libcopy a`)))
		e.waitRun(n + 1)
		if q := e.eval(`new URL(location.href).searchParams.get('library')`); q != "1" {
			t.Errorf("library copy URL: library=%q", q)
		}
		if len(e.pageTable("http_data")) == 0 {
			t.Error("the library's copy did not run")
		}
		e.shot("shadowed")
	})
}

// drag presses the left button at (x0, y0), moves in steps to (x1, y1)
// and releases it.
func (e *env) drag(x0, y0, x1, y1 float64) {
	e.t.Helper()
	e.mouse(input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: x0, Y: y0})
	e.mouse(input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMousePressed, X: x0, Y: y0, Button: input.MouseButtonLeft, Buttons: 1, ClickCount: 1})
	for i := 1; i <= 5; i++ {
		f := float64(i) / 5
		e.mouse(input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, X: x0 + (x1-x0)*f, Y: y0 + (y1-y0)*f, Button: input.MouseButtonLeft, Buttons: 1})
	}
	e.mouse(input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseReleased, X: x1, Y: y1, Button: input.MouseButtonLeft, ClickCount: 1})
	e.do(chromedp.Sleep(50 * time.Millisecond))
}

func (e *env) mouse(p input.DispatchMouseEventParams) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, input.DispatchMouseEvent, p); err != nil {
		e.t.Fatal(err)
	}
}

// luminance is the relative luminance (0 black … 1 white) of a CSS
// colour: rgb(…), rgba(…) or #rrggbb.
func luminance(css string) float64 {
	var r, g, b float64
	if strings.HasPrefix(css, "#") && len(css) == 7 {
		v, _ := strconv.ParseUint(css[1:], 16, 32)
		r, g, b = float64(v>>16), float64(v>>8&0xff), float64(v&0xff)
	} else if m := regexp.MustCompile(`rgba?\((\d+), (\d+), (\d+)`).FindStringSubmatch(css); m != nil {
		r, _ = strconv.ParseFloat(m[1], 64)
		g, _ = strconv.ParseFloat(m[2], 64)
		b, _ = strconv.ParseFloat(m[3], 64)
	} else {
		return math.NaN()
	}
	return (0.2126*r + 0.7152*g + 0.0722*b) / 255
}

// clockMS reads an axis label (HH:MM, HH:MM:SS or HH:MM:SS.mmm) as ms
// since midnight.
func clockMS(s string) int64 {
	var h, m, sec, ms int64
	parts := strings.Split(s, ":")
	h, _ = strconv.ParseInt(parts[0], 10, 64)
	m, _ = strconv.ParseInt(parts[1], 10, 64)
	if len(parts) > 2 {
		secs := strings.Split(parts[2], ".")
		sec, _ = strconv.ParseInt(secs[0], 10, 64)
		if len(secs) > 1 {
			ms, _ = strconv.ParseInt(secs[1], 10, 64)
		}
	}
	return ((h*60+m)*60+sec)*1000 + ms
}

// niceStep tells a clock step a person would choose: 1, 2 or 5 times a
// power of ten of ms up to a second, then 1, 2, 5, 10, 15 or 30 seconds
// or minutes, or whole hours.
func niceStep(ms int64) bool {
	nice := []int64{100, 200, 500}
	for _, u := range []int64{1000, 60000} {
		for _, k := range []int64{1, 2, 5, 10, 15, 30} {
			nice = append(nice, k*u)
		}
	}
	for _, k := range []int64{1, 2, 3, 6, 12} {
		nice = append(nice, k*3600000)
	}
	i := sort.Search(len(nice), func(i int) bool { return nice[i] >= ms })
	return i < len(nice) && nice[i] == ms
}

// poll waits for a JavaScript condition to hold.
func (e *env) poll(cond string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond)); err != nil {
		e.t.Fatalf("waiting for %s: %v", cond, err)
	}
}
