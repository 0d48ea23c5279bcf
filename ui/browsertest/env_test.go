package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
	"github.com/pxq-dev/pxq/ui"
)

// Hostile values sent through the traced server: they must show as text.
const (
	hostilePath   = "/<script>alert(1)</script>"
	hostileBody   = `<img src=x onerror="window.__pwned=1;alert(2)">`
	hostileHeader = `<svg onload="window.__pwned=1">`
)

// env is a UI server over an engine with real (or, without eBPF,
// generated) HTTP traffic, and a browser tab.
type env struct {
	t       *testing.T
	eng     *engine.Engine
	base    string // http://127.0.0.1:PORT/
	appPort int    // the traced app server's port
	now     time.Time
	traced  bool
	ctx     context.Context // the tab
	shots   string
	dialogs chan string
}

// chromium returns the browser's path, or skips (fails under CI=true).
var chromium = testenv.Chromium

// newEnv starts the app server, traces it (or generates its rows), and
// serves the UI over the engine on loopback, with a browser tab on it.
func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with a change to the UI's configuration.
func newEnvWith(t *testing.T, change func(*ui.Config)) *env {
	path := chromium(t)
	e := &env{t: t, dialogs: make(chan string, 8)}
	meta := metadata.Provider(metadata.None{})
	if h, err := metadata.NewHost(); err == nil {
		meta = h
	}
	eng, err := engine.New(engine.Config{Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	e.eng = eng
	app := appServer(t)
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	e.appPort, _ = strconv.Atoi(port)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tr, terr := startTracer(ctx, eng.Store())
	if terr == nil {
		e.traced = true
		sent := sendTraffic(t, app.URL, e.appPort)
		e.waitRows(2*sent, 10*time.Second)
		tr.Close() // all of it is in the store now; keep later runs stable
	} else {
		t.Logf("eBPF tracing unavailable (%v): using generated rows", terr)
		generateRows(t, eng.Store(), e.appPort, time.Now())
	}
	e.now = time.Now()

	lib := scripts.NewLibrary(filepath.Join("testdata", "scripts"))
	cfg := ui.Config{Runner: eng, Library: lib, Now: func() time.Time { return e.now },
		Entities: func(kind string) []string {
			if kind == "node" {
				return []string{"test-node"}
			}
			return nil
		}}
	if change != nil {
		change(&cfg)
	}
	h := ui.Handler(cfg)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.base = srv.URL + "/"

	e.shots = shotsDir(t)
	e.ctx = newTab(t, path, 1400, 900)
	e.watchDialogs()
	return e
}

// shotsDir is where screenshots go: $PXQ_UI_SHOTS, else a temp dir.
func shotsDir(t *testing.T) string {
	if d := os.Getenv("PXQ_UI_SHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// newTab starts headless Chromium with the flags this closed network
// needs (no background traffic to Google's services) and opens a tab.
func newTab(t testing.TB, path string, w, h int) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.WindowSize(w, h),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), int64(h))); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// watchDialogs records (and dismisses) every alert the page opens.
func (e *env) watchDialogs() {
	dialogs := chromedp.Events(e.ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			select {
			case e.dialogs <- ev.Message:
			default:
			}
			chromedp.Call(e.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
}

// startTracer traces this process with eBPF; it fails without root. Both
// sides of each request are kept: the tests read the client rows of
// their own requests, whose server is this process too.
func startTracer(ctx context.Context, store *table.Store) (*ebpf.Tracer, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not root")
	}
	if os.Getenv("PXQ_UI_NO_EBPF") == "1" {
		return nil, fmt.Errorf("PXQ_UI_NO_EBPF=1")
	}
	tr, err := ebpf.New(ebpf.Config{TraceSelf: true, AllClientSides: true, OnlyPIDs: []uint32{uint32(os.Getpid())}, FlushInterval: 20 * time.Millisecond}, store)
	if err != nil {
		return nil, err
	}
	tr.Start(ctx)
	return tr, nil
}

// appServer is the traced application: a few JSON endpoints and an echo.
func appServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"name":"item %s","tags":["a","b"],"price":12.5}`, r.PathValue("id"), r.PathValue("id"))
	})
	mux.HandleFunc("/api/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		io.WriteString(w, "slow")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/html")
		w.Write(b)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such page: "+r.URL.Path, http.StatusNotFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// sendTraffic sends requests to the app over about 1.5 s (so that time
// series have several points) and returns how many.
func sendTraffic(t *testing.T, base string, port int) int {
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	n := 0
	do := func(req *http.Request) {
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		n++
	}
	for i := 0; i < 30; i++ {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/items/%d", base, i%5), nil)
		do(req)
		if i%6 == 0 {
			req, _ = http.NewRequest("GET", base+"/api/slow", nil)
			do(req)
		}
		time.Sleep(40 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", base+"/echo", strings.NewReader(hostileBody))
	req.Header.Set("Content-Type", "text/html")
	req.Header.Set("X-Evil", hostileHeader)
	do(req)
	// A path no client library would send unescaped: write it by hand.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Evil: %s\r\nConnection: close\r\n\r\n", hostilePath, hostileHeader)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	conn.Close()
	return n + 1
}

// waitRows waits until the store has n http_events rows of the app's
// port (client and server side), and then for no more to come.
func (e *env) waitRows(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	last := -1
	for time.Now().Before(deadline) {
		got := e.appRows()
		if got >= n && got == last {
			return
		}
		last = got
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Logf("waited for %d rows of port %d, have %d", n, e.appPort, last)
}

func (e *env) appRows() int {
	tb := e.eng.Store().Table("http_events")
	n := 0
	for _, b := range tb.Snapshot(0, 0) {
		r := b.Record
		lp := r.Column(r.Schema().FieldIndices("local_port")[0]).(*array.Int64)
		rp := r.Column(r.Schema().FieldIndices("remote_port")[0]).(*array.Int64)
		for i := 0; i < int(r.NumRows()); i++ {
			if lp.Value(i) == int64(e.appPort) || rp.Value(i) == int64(e.appPort) {
				n++
			}
		}
	}
	return n
}

// generateRows appends rows like the tracer's for the app's traffic:
// client-side rows (trace_role 1) to 127.0.0.1:port, the hostile ones
// included.
func generateRows(t testing.TB, store *table.Store, port int, end time.Time) {
	var rows []map[string]any
	start := end.Add(-2 * time.Second)
	for i := 0; i < 36; i++ {
		path := fmt.Sprintf("/api/items/%d", i%5)
		status, body, lat := int64(200), fmt.Sprintf(`{"id":"%d","name":"item %d","tags":["a","b"],"price":12.5}`, i%5, i%5), int64(300_000+i*7_000)
		if i%6 == 0 {
			path, body, lat = "/api/slow", "slow", 30_500_000
		}
		rows = append(rows, httpRow(start.Add(time.Duration(i)*45*time.Millisecond), port, "GET", path, "", status, body, lat))
	}
	rows = append(rows, httpRow(end.Add(-200*time.Millisecond), port, "POST", "/echo", hostileBody, 200, hostileBody, 250_000))
	rows = append(rows, httpRow(end.Add(-100*time.Millisecond), port, "GET", hostilePath, "", 404, "no such page: "+hostilePath+"\n", 120_000))
	appendRows(t, store.Table("http_events"), rows)
}

func httpRow(at time.Time, port int, method, path, reqBody string, status int64, respBody string, latency int64) map[string]any {
	hdr, _ := json.Marshal(map[string]string{"Host": "127.0.0.1", "X-Evil": hostileHeader})
	return map[string]any{
		"time_": at.UnixNano(), "upid": types.UPID(0, uint32(os.Getpid()), 1), "remote_addr": "127.0.0.1",
		"remote_port": int64(port), "local_addr": "127.0.0.1", "local_port": int64(40000), "trace_role": int64(1),
		"major_version": int64(1), "minor_version": int64(1), "req_headers": string(hdr), "req_method": method,
		"req_path": path, "req_body": reqBody, "req_body_size": int64(len(reqBody)), "resp_headers": `{"Content-Type":"text/plain"}`,
		"resp_status": status, "resp_message": http.StatusText(int(status)), "resp_body": respBody,
		"resp_body_size": int64(len(respBody)), "latency": latency,
	}
}

// appendRows appends rows (column name → value; zero values for the
// rest) to a table as one batch.
func appendRows(t testing.TB, tb *table.Table, rows []map[string]any) {
	rel := tb.Relation()
	b := array.NewRecordBuilder(memory.DefaultAllocator, tb.Schema())
	defer b.Release()
	for _, r := range rows {
		for i, c := range rel {
			v := r[c.Name]
			switch fb := b.Field(i).(type) {
			case *array.Int64Builder:
				x, _ := v.(int64)
				fb.Append(x)
			case *array.Float64Builder:
				x, _ := v.(float64)
				fb.Append(x)
			case *array.StringBuilder:
				x, _ := v.(string)
				fb.Append(x)
			case *array.BooleanBuilder:
				x, _ := v.(bool)
				fb.Append(x)
			case *array.TimestampBuilder:
				x, _ := v.(int64)
				fb.Append(arrow.Timestamp(x))
			case *array.FixedSizeBinaryBuilder:
				x, _ := v.(types.UInt128Value)
				fb.Append(x.Bytes())
			default:
				t.Fatalf("column %s: builder %T", c.Name, fb)
			}
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	if err := tb.Append(rec); err != nil {
		t.Fatal(err)
	}
}

// engineText runs a script on the engine as the UI does and formats its
// table out as the CLI does.
func (e *env) engineText(script string, args map[string]string, out string) [][]string {
	e.t.Helper()
	s, err := scripts.NewLibrary(filepath.Join("testdata", "scripts")).Get(script)
	if err != nil {
		e.t.Fatal(err)
	}
	tables, err := e.eng.Collect(context.Background(), engine.Query{Script: s, Args: args, Now: e.now})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range tables {
		if t.Name != out {
			continue
		}
		var rows [][]string
		for _, r := range t.Records {
			for i := 0; i < int(r.NumRows()); i++ {
				row := make([]string, r.NumCols())
				for c := range row {
					row[c] = format.Cell(format.Value(r.Column(c), i), t.Relation[c].Semantic)
				}
				rows = append(rows, row)
			}
		}
		return rows
	}
	e.t.Fatalf("%s has no output %s", script, out)
	return nil
}

// --- browser helpers ---

// runs returns how many runs the page has finished.
func (e *env) runs() int {
	n, _ := chromedp.Run(e.ctx, chromedp.Evaluate[string](`document.body.dataset.runs || "0"`))
	i, _ := strconv.Atoi(n)
	return i
}

// waitRun waits for the page to finish run number n (or a later one).
func (e *env) waitRun(n int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	cond := fmt.Sprintf(`Number(document.body.dataset.runs || 0) >= %d && document.body.dataset.state !== 'running'`, n)
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond))
	for try := 0; try < 3 && err != nil && strings.Contains(err.Error(), "Cannot find context"); try++ {
		// The poll began in the document a navigation replaced.
		time.Sleep(200 * time.Millisecond)
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](cond))
	}
	if err != nil {
		st, _ := chromedp.Run(e.ctx, chromedp.Evaluate[string](`document.body.dataset.state + ': ' + document.querySelector('.messages').textContent`))
		e.t.Fatalf("run %d did not finish: %v (page: %s)", n, err, st)
	}
}

// open navigates to the page with a query and waits for its first run.
func (e *env) open(query string) {
	e.t.Helper()
	if err := chromedp.Do(e.ctx, chromedp.Navigate(e.base+query)); err != nil {
		e.t.Fatal(err)
	}
	e.waitRun(1)
}

func (e *env) eval(js string) string {
	e.t.Helper()
	v, err := chromedp.Run(e.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		e.t.Fatalf("%s: %v", js, err)
	}
	return v
}

func (e *env) do(steps ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		e.t.Fatal(err)
	}
}

// shot saves a screenshot of the page as name.png.
func (e *env) shot(name string) {
	e.t.Helper()
	png, err := chromedp.Run(e.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("screenshot %s", p)
}

// pageTable returns the rows of an output table as the page shows them.
func (e *env) pageTable(out string) [][]string {
	e.t.Helper()
	js := e.eval(fmt.Sprintf(`JSON.stringify(window.pxq.views.get(%q) ? window.pxq.views.get(%q).allText() : null)`, out, out))
	var rows [][]string
	if err := json.Unmarshal([]byte(js), &rows); err != nil || rows == nil {
		e.t.Fatalf("page has no table %s (%v)", out, err)
	}
	return rows
}

func (e *env) noDialogs() {
	e.t.Helper()
	select {
	case m := <-e.dialogs:
		e.t.Errorf("the page opened a dialog: %q", m)
	default:
	}
}
