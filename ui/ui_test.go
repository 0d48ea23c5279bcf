package ui

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/ipc"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/demo"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/scripts"
)

// frame is one IPC stream of a run answer.
type frame struct {
	meta map[string]string
	rows int64
	cols []string
}

// readFrames splits a run answer into its IPC streams.
func readFrames(t *testing.T, r io.Reader) []frame {
	t.Helper()
	br := bufio.NewReader(r)
	var out []frame
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return out
		}
		rd, err := ipc.NewReader(br)
		if err != nil {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		f := frame{meta: map[string]string{}}
		md := rd.Schema().Metadata()
		for i, k := range md.Keys() {
			f.meta[k] = md.Values()[i]
		}
		for _, fl := range rd.Schema().Fields() {
			f.cols = append(f.cols, fl.Name)
		}
		for rd.Next() {
			f.rows += rd.Record().NumRows()
		}
		if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		rd.Release()
		out = append(out, f)
	}
}

func newTestHandler(t *testing.T, token string) (http.Handler, *engine.Engine) {
	t.Helper()
	c, err := capture.Open("../demo/" + demo.ShippedDir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(eng.Store()); err != nil {
		t.Fatal(err)
	}
	end := c.Manifest.EndNS
	return Handler(Config{Runner: eng, Library: scripts.NewLibrary(), Token: token, Now: captureNow(end)}), eng
}

func post(h http.Handler, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/api/run", strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestRunStreamsTablesThenEnd(t *testing.T) {
	h, _ := newTestHandler(t, "")
	w := post(h, `{"script":"px/http_request_stats"}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/vnd.apache.arrow.stream" {
		t.Errorf("Content-Type %q", ct)
	}
	fr := readFrames(t, w.Body)
	var kinds []string
	for _, f := range fr {
		kinds = append(kinds, f.meta["pxq.frame"]+":"+f.meta["pxq.table"])
	}
	want := "table:http_request_stats done:http_request_stats table:status_codes done:status_codes end:"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	if fr[0].rows == 0 || fr[2].rows == 0 {
		t.Errorf("rows: %d, %d", fr[0].rows, fr[2].rows)
	}
	if fr[1].meta["pxq.rows"] == "" || fr[1].meta["pxq.truncated"] != "false" {
		t.Errorf("done frame %v", fr[1].meta)
	}
}

func TestCompileErrorIsJSONWithPosition(t *testing.T) {
	h, _ := newTestHandler(t, "")
	w := post(h, `{"pxl":"import px\n\ndf = px.DataFrame(table='http_events')\ndf.x = df.no_such_column\npx.display(df)\n"}`)
	if w.Code != 400 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var r struct{ Error errorBody }
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Error.Kind != "compile" || r.Error.Line != 4 || r.Error.Col == 0 || !strings.Contains(r.Error.Message, "no_such_column") {
		t.Errorf("error %+v", r.Error)
	}
}

func TestVisErrorHasPosition(t *testing.T) {
	h, _ := newTestHandler(t, "")
	w := post(h, `{"pxl":"import px\n","vis":"{\n  \"widgets\": [\n    {\"name\": }\n  ]\n}"}`)
	var r struct{ Error errorBody }
	json.Unmarshal(w.Body.Bytes(), &r)
	if w.Code != 400 || r.Error.Kind != "vis" || r.Error.Line != 3 {
		t.Errorf("status %d, error %+v", w.Code, r.Error)
	}
}

func TestToken(t *testing.T) {
	h, _ := newTestHandler(t, "s3cret")
	for _, c := range []struct {
		auth string
		code int
	}{{"", 401}, {"Bearer nope", 401}, {"Bearer s3cret", 200}} {
		req := httptest.NewRequest("GET", "/api/scripts", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != c.code {
			t.Errorf("Authorization %q: status %d, want %d", c.auth, w.Code, c.code)
		}
	}
	// The page itself holds no data and loads without the token.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "assets/main.js") {
		t.Errorf("page: %d", w.Code)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestScriptsAndEntities(t *testing.T) {
	h, _ := newTestHandler(t, "")
	get := func(path string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Body.String()
	}
	code, body := get("/api/scripts/px/http_data")
	var d scriptDetail
	if code != 200 || json.Unmarshal([]byte(body), &d) != nil || !strings.Contains(d.PXL, "def http_data") || len(d.Vis) < 10 || d.Manifest.Short == "" {
		t.Errorf("script: %d %.200s", code, body)
	}
	if code, _ := get("/api/scripts/px/nope"); code != 404 {
		t.Errorf("unknown script: %d", code)
	}
	if code, body := get("/api/entities?kind=pod"); code != 200 || !strings.Contains(body, `"names":[]`) {
		t.Errorf("entities: %d %s", code, body)
	}
	if code, _ := get("/api/entities?kind=bogus"); code != 400 {
		t.Errorf("bad kind: %d", code)
	}
}

func captureNow(end int64) func() time.Time {
	now := time.Unix(0, end+int64(time.Second))
	return func() time.Time { return now }
}
