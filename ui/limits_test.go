package ui

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
)

// A run the result limit cuts ends with the cut table flagged and a
// warning frame before the end.
func TestRunWarnsOfACutResult(t *testing.T) {
	_, eng := newTestHandler(t, "")
	r := &query.Runner{Backend: eng, Limits: query.Limits{MaxResultRows: 5}}
	h := Handler(Config{Runner: r, Library: scripts.NewLibrary()})
	w := post(h, `{"pxl":"import px\npx.display(px.DataFrame(table='http_events', start_time='-30d')[['req_path']], 'rows')\n"}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var kinds []string
	var warning string
	for _, f := range readFrames(t, w.Body) {
		kinds = append(kinds, f.meta["pxq.frame"]+":"+f.meta["pxq.truncated"])
		if f.meta["pxq.frame"] == FrameWarning {
			warning = f.meta["pxq.message"]
		}
	}
	if got := strings.Join(kinds, " "); got != "table: done:true warning: end:" || !strings.Contains(warning, "5 rows") {
		t.Fatalf("frames %s, warning %q", got, warning)
	}
}

func TestRunOnABusyServer(t *testing.T) {
	_, eng := newTestHandler(t, "")
	gate := query.NewGate(1, -1)
	h := Handler(Config{Runner: &query.Runner{Backend: eng, Gate: gate}, Library: scripts.NewLibrary()})
	_, leave, err := gate.Enter(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	for _, tc := range []struct {
		name string
		do   func()
		want string
	}{
		{"busy", func() {}, "server busy"},
		{"shutting down", gate.Close, "shutting down"},
	} {
		tc.do()
		w := post(h, `{"script":"px/http_request_stats"}`)
		var r struct{ Error errorBody }
		json.Unmarshal(w.Body.Bytes(), &r)
		if w.Code != 503 || r.Error.Kind != "busy" || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%s: status %d, error %+v", tc.name, w.Code, r.Error)
		}
	}
}
