package browsertest

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/ui"
)

// TestUI drives the UI in Chromium: one environment (server, traced
// traffic, browser) for every step, in order.
func TestUI(t *testing.T) {
	e := newEnv(t)
	t.Logf("data: traced=%v, app port %d, UI at %s", e.traced, e.appPort, e.base)
	dest := fmt.Sprintf("127.0.0.1:%d", e.appPort)

	t.Run("HTTPDataMatchesEngine", func(t *testing.T) {
		e.t = t
		e.open("?script=px/http_data")
		if got := e.eval(`document.querySelector('ul.scripts li.cur').dataset.name`); got != "px/http_data" {
			t.Errorf("picker marks %q", got)
		}
		// Set the destination filter and run with the button.
		n := e.runs()
		e.do(chromedp.SetValue(chromedp.CSS(`input[name=destination_filter]`), dest),
			chromedp.Click(chromedp.ID("run")))
		e.waitRun(n + 1)
		u, _ := url.Parse(e.eval(`location.href`))
		if u.Query().Get("destination_filter") != dest || u.Query().Get("script") != "px/http_data" {
			t.Errorf("URL %s lacks the script and the filter", u)
		}
		args := map[string]string{"destination_filter": dest}
		want := e.engineText("px/http_data", args, "http_data")
		got := e.pageTable("http_data")
		if len(want) < 10 {
			t.Fatalf("the engine returned %d rows only", len(want))
		}
		if len(got) != len(want) {
			t.Fatalf("page shows %d rows, engine %d", len(got), len(want))
		}
		for i := range want {
			if strings.Join(got[i], "\x00") != strings.Join(want[i], "\x00") {
				t.Fatalf("row %d:\npage   %q\nengine %q", i, got[i], want[i])
			}
		}
		// The DOM holds the first rows as cells (virtualized: only those in view).
		first := e.eval(`[...document.querySelectorAll('.widget[data-output=http_data] .tr')].filter(r => r.dataset.row === '0')[0].innerText`)
		if !strings.Contains(first, want[0][3]) || !strings.Contains(first, want[0][4]) {
			t.Errorf("first row in the DOM %q, want method %q path %q", first, want[0][3], want[0][4])
		}
		drawn, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('.widget[data-output=http_data] .tr').length)`))
		if drawn == 0 || drawn > len(want) {
			t.Errorf("%d rows in the DOM", drawn)
		}
		// Reloading the URL reproduces the view.
		e.open(strings.TrimPrefix(u.String(), strings.TrimSuffix(e.base, "/")+"/"))
		if v := e.eval(`document.querySelector('input[name=destination_filter]').value`); v != dest {
			t.Errorf("after reload the filter is %q", v)
		}
		if again := e.pageTable("http_data"); len(again) != len(want) {
			t.Errorf("after reload %d rows, want %d", len(again), len(want))
		}
		// Sorting by latency puts the slowest request first.
		e.do(chromedp.Click(chromedp.CSS(`.widget[data-output=http_data] .th[data-col="6"] .th-name`)),
			chromedp.Click(chromedp.CSS(`.widget[data-output=http_data] .th[data-col="6"] .th-name`)))
		sorted := e.pageTable("http_data")
		if !strings.HasSuffix(sorted[0][6], "ms") {
			t.Errorf("sorted by latency, descending: first latency %q", sorted[0][6])
		}
		e.shot("http_data")
		e.noDialogs()
	})

	t.Run("TimeseriesDrawsSeries", func(t *testing.T) {
		e.t = t
		e.open("?script=test/ts_chart&dest=" + url.QueryEscape(dest))
		rows := e.engineText("test/ts_chart", map[string]string{"dest": dest}, "ts")
		paths := map[string]bool{}
		for _, r := range rows {
			paths[r[1]] = true
		}
		if len(paths) < 2 {
			t.Fatalf("want several series, the engine has %v", paths)
		}
		e.do(chromedp.WaitVisible(chromedp.CSS(`.widget[data-output=ts][data-type=TimeseriesChart] svg .mark-line path`)))
		lines, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('.widget[data-type=TimeseriesChart] svg g.mark-line path').length)`))
		areas, _ := strconv.Atoi(e.eval(`String(document.querySelectorAll('.widget[data-type=TimeseriesChart] svg g.mark-area path').length)`))
		legend := e.eval(`[...document.querySelectorAll('.widget[data-type=TimeseriesChart]')][0].querySelectorAll('.role-legend-label text').length + ''`)
		if lines < len(paths) || areas < len(paths) {
			t.Errorf("%d line and %d area marks for %d series", lines, areas, len(paths))
		}
		if legend != strconv.Itoa(len(paths)) {
			t.Errorf("legend has %s entries, want %d", legend, len(paths))
		}
		// The table of the same output matches the engine too.
		if got := e.pageTable("ts"); len(got) != len(rows) {
			t.Errorf("points table %d rows, engine %d", len(got), len(rows))
		}
		e.shot("timeseries")
	})

	t.Run("ScriptReferenceOpensScript", func(t *testing.T) {
		e.t = t
		e.open("?script=test/links&dest=" + url.QueryEscape(dest))
		link := chromedp.CSS(`.widget[data-output=servers] a.ref`)
		href := e.eval(`document.querySelector('.widget[data-output=servers] a.ref').getAttribute('href')`)
		if !strings.Contains(href, "script=px%2Fhttp_data") {
			t.Errorf("link href %q", href)
		}
		n := e.runs()
		e.do(chromedp.Click(link))
		e.waitRun(n + 1)
		u, _ := url.Parse(e.eval(`location.href`))
		if u.Query().Get("script") != "px/http_data" || u.Query().Get("destination_filter") != dest {
			t.Errorf("after the link, URL %s", u)
		}
		if v := e.eval(`document.querySelector('input[name=destination_filter]').value`); v != dest {
			t.Errorf("after the link, the filter is %q", v)
		}
		if rows := e.pageTable("http_data"); len(rows) < 10 {
			t.Errorf("after the link, %d rows", len(rows))
		}
		// Back returns to the list.
		e.do(chromedp.NavigateBack())
		e.waitRun(1)
		if got := e.eval(`new URL(location.href).searchParams.get('script')`); got != "test/links" {
			t.Errorf("back: script %q", got)
		}
		e.shot("script_reference")
	})

	t.Run("CompileErrorAtItsLine", func(t *testing.T) {
		e.t = t
		e.open("?script=px/http_data&edit=1")
		broken := "import px\n\n\ndef http_data(start_time: str, source_filter: str, destination_filter: str, max_rows: int):\n    df = px.DataFrame(table='http_events', start_time=start_time)\n    df.x = df.no_such_column + 1\n    return df\n"
		n := e.runs()
		e.do(chromedp.SetValue(chromedp.CSS(`textarea[aria-label="script.pxl"]`), broken),
			chromedp.Click(chromedp.ID("run")))
		e.waitRun(n + 1)
		msg := e.eval(`document.querySelector('.ed-msg').textContent`)
		if !strings.HasPrefix(msg, "line 6, column ") || !strings.Contains(msg, "no_such_column") {
			t.Errorf("editor message %q", msg)
		}
		if ln := e.eval(`document.querySelector('.ed-gutter .ln.err').textContent`); ln != "6" {
			t.Errorf("gutter marks line %q", ln)
		}
		if hidden := e.eval(`String(document.querySelector('.ed-marker').hidden)`); hidden != "false" {
			t.Error("no marker at the error")
		}
		if st := e.eval(`document.body.dataset.state`); st != "error" {
			t.Errorf("state %q", st)
		}
		e.shot("compile_error")
	})

	t.Run("HostileValuesStayText", func(t *testing.T) {
		e.t = t
		e.open("?script=px/http_data&destination_filter=" + url.QueryEscape(dest))
		rows := e.pageTable("http_data")
		var hostile, echo = -1, -1
		for i, r := range rows {
			if r[4] == hostilePath {
				hostile = i
			}
			if r[4] == "/echo" {
				echo = i
			}
		}
		if hostile < 0 || echo < 0 {
			t.Fatalf("hostile requests not in the table (path row %d, echo row %d)", hostile, echo)
		}
		if !strings.Contains(rows[echo][10], hostileBody) {
			t.Errorf("req_body %q", rows[echo][10])
		}
		// Sorted by path, '/<script>…' comes first ('<' sorts before
		// 'a'); then open its row in the detail pane.
		e.do(chromedp.Click(chromedp.CSS(`.widget[data-output=http_data] .th[data-col="4"] .th-name`)))
		text := e.eval(`document.querySelector('.widget[data-output=http_data] .tbl-rows').innerText`)
		if !strings.Contains(text, hostilePath) {
			t.Errorf("the hostile path is not shown as text")
		}
		e.do(chromedp.Click(chromedp.CSS(`.widget[data-output=http_data] .tr[data-row="` + strconv.Itoa(e.rowIndex(hostilePath)) + `"] .td`)))
		detail := e.eval(`document.querySelector('.widget[data-output=http_data] .tbl-detail').innerText`)
		if !strings.Contains(detail, `"X-Evil": "<svg onload=`) {
			t.Errorf("detail pane lacks the hostile header: %q", detail)
		}
		bad := e.eval(`String(document.querySelectorAll('main script, main img, main svg [onload], main [onerror], main iframe').length + (window.__pwned ? 100 : 0))`)
		if bad != "0" {
			t.Errorf("injected elements or code ran: %s", bad)
		}
		e.shot("hostile")
		e.noDialogs()
	})

	t.Run("GraphAndLive", func(t *testing.T) {
		e.t = t
		e.open("?script=px/http_graph&start_time=-10m")
		if n := e.eval(`String(document.querySelectorAll('svg.graph path.edge').length)`); n == "0" {
			t.Log("no graph edges: px/http_graph found none in this data") // the library script may want k8s
		}
		e.do(chromedp.Click(chromedp.ID("live")))
		n := e.runs()
		e.waitRun(n + 1) // the live box runs at once
		if live := e.eval(`new URL(location.href).searchParams.get('live')`); live != "10" {
			t.Errorf("live in URL: %q", live)
		}
		st := e.eval(`document.getElementById('status').textContent`)
		if !strings.HasPrefix(st, "last run ") {
			t.Errorf("status %q", st)
		}
		e.do(chromedp.Click(chromedp.ID("live")))
		e.shot("live")
	})
}

// TestToken checks that a server with a token asks for it once and keeps
// it for the session.
func TestToken(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(ui.Handler(ui.Config{Runner: e.eng, Library: scripts.NewLibrary(), Token: "t0ken"}))
	defer srv.Close()
	e.do(chromedp.Navigate(srv.URL + "/?script=px/http_data"))
	e.do(chromedp.WaitVisible(chromedp.ID("token")))
	e.do(chromedp.SendKeys(chromedp.ID("token"), "wrong\r"))
	e.do(chromedp.WaitVisible(chromedp.ID("token")))
	if msg := e.eval(`document.querySelector('.modal p').textContent`); !strings.Contains(msg, "refused") {
		t.Errorf("second prompt says %q", msg)
	}
	e.do(chromedp.SendKeys(chromedp.ID("token"), "t0ken\r"))
	e.waitRun(1)
	if n := e.eval(`String(document.querySelectorAll('ul.scripts li').length)`); n == "0" {
		t.Error("no scripts listed after the token")
	}
	// A reload in the same tab does not ask again.
	e.do(chromedp.Reload())
	e.waitRun(1)
	if n := e.eval(`String(document.querySelectorAll('.modal').length)`); n != "0" {
		t.Error("asked for the token again after a reload")
	}
	e.shot("token")
}

// rowIndex returns the data row index of the http_data row with path p.
func (e *env) rowIndex(p string) int {
	i, _ := strconv.Atoi(e.eval(fmt.Sprintf(`String(window.pxq.views.get('http_data').t.values[4].indexOf(%q))`, p)))
	return i
}
