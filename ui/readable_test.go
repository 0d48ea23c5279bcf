package ui

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/scripts"
)

// errorOf decodes the JSON error of an answer.
func errorOf(t *testing.T, body string) errorBody {
	t.Helper()
	var e struct{ Error errorBody }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an error answer: %.200s", body)
	}
	return e.Error
}

func TestBadVariableIsBlamedOnIt(t *testing.T) {
	h, _ := newTestHandler(t, "")
	w := post(h, `{"script":"px/http_data","args":{"max_rows":"12x"}}`)
	e := errorOf(t, w.Body.String())
	if w.Code != 400 || e.Kind != "args" || e.Variable != "max_rows" || e.Line != 0 || !strings.Contains(e.Message, `"12x" is not an integer`) {
		t.Errorf("%d %+v", w.Code, e)
	}
	// An edited vis spec whose variable has no default: named, with no
	// advice for the command line.
	vis := `{"variables":[{"name":"svc","type":"PX_SERVICE"}],"widgets":[{"name":"t","func":{"name":"f","args":[{"name":"svc","variable":"svc"}]},"displaySpec":{"@type":"types.px.dev/px.vispb.Table"}}]}`
	body, _ := json.Marshal(map[string]any{"script": "x", "pxl": "import px\ndef f(svc: str):\n    return px.DataFrame(table='http_events')\n", "vis": vis, "args": map[string]string{}})
	w = post(h, string(body))
	e = errorOf(t, w.Body.String())
	if e.Variable != "svc" || strings.Contains(e.Message, "--arg") {
		t.Errorf("missing variable: %+v", e)
	}
	// A value the compiler rejects for the parameter it is bound to (the
	// variable is typed PX_STRING, the parameter int).
	vis = `{"variables":[{"name":"n","type":"PX_STRING","defaultValue":"1"}],"widgets":[{"name":"t","func":{"name":"f","args":[{"name":"limit","variable":"n"}]},"displaySpec":{"@type":"types.px.dev/px.vispb.Table"}}]}`
	body, _ = json.Marshal(map[string]any{"script": "x", "pxl": "import px\ndef f(limit: int):\n    return px.DataFrame(table='http_events').head(limit)\n", "vis": vis, "args": map[string]string{"n": "ten"}})
	w = post(h, string(body))
	e = errorOf(t, w.Body.String())
	if e.Variable != "n" || e.Line != 0 || !strings.Contains(e.Message, `"ten" is not an integer`) {
		t.Errorf("compiler's argument error: %+v", e)
	}
}

func TestUnknownScriptWithoutCLIAdvice(t *testing.T) {
	h, _ := newTestHandler(t, "")
	w := post(h, `{"script":"px/http_dat"}`)
	e := errorOf(t, w.Body.String())
	if w.Code != 404 || strings.Contains(e.Message, "pxq scripts list") || !strings.Contains(e.Message, "px/http_dat") {
		t.Errorf("%d %+v", w.Code, e)
	}
}

func TestShadowedScriptsAreBothOffered(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "px", "http_data")
	if err := os.MkdirAll(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(mine, "http_data.pxl"), []byte("import px\npx.display(px.DataFrame(table='http_events').head(3), 'mine')\n"), 0o644)
	os.WriteFile(filepath.Join(mine, "manifest.yaml"), []byte("short: my copy\n"), 0o644)
	_, eng := newTestHandler(t, "")
	h := Handler(Config{Runner: eng, Library: scripts.NewLibrary(dir)})
	get := func(path string) string {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Body.String()
	}
	var list []scriptInfo
	json.Unmarshal([]byte(get("/api/scripts")), &list)
	var got []scriptInfo
	for _, s := range list {
		if s.Name == "px/http_data" {
			got = append(got, s)
		}
	}
	if len(got) != 2 || !got[0].Shadows || got[0].Source != dir || !got[1].Library || got[1].Source != "library" {
		t.Fatalf("px/http_data entries: %+v", got)
	}
	var d scriptDetail
	json.Unmarshal([]byte(get("/api/scripts/px/http_data")), &d)
	if !d.Shadows || !strings.Contains(d.PXL, "'mine'") {
		t.Errorf("user copy: shadows=%v %.80q", d.Shadows, d.PXL)
	}
	d = scriptDetail{}
	json.Unmarshal([]byte(get("/api/scripts/px/http_data?library=1")), &d)
	if !d.Library || !strings.Contains(d.PXL, "def http_data") {
		t.Errorf("library copy: library=%v %.80q", d.Library, d.PXL)
	}
	// Running each: the user's writes its table "mine", the library's
	// its widget's output.
	for body, want := range map[string]string{`{"script":"px/http_data"}`: "mine", `{"script":"px/http_data","library":true}`: "http_data"} {
		w := post(h, body)
		found := false
		for _, f := range readFrames(t, w.Body) {
			found = found || f.meta["pxq.frame"] == FrameTable && f.meta["pxq.table"] == want
		}
		if !found {
			t.Errorf("%s: no table %s", body, want)
		}
	}
}

func TestInfo(t *testing.T) {
	h, _ := newTestHandler(t, "")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/info", nil))
	var in serverInfo
	if err := json.Unmarshal(w.Body.Bytes(), &in); err != nil || in.Now == "" || in.DefaultScript != "px/http_data" {
		t.Errorf("%s", w.Body.String())
	}
}
