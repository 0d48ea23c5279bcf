// Package amqptest describes the amqp_events rows an AMQP session should
// make, for the tests that run a real client (which write them beside
// the session's recording) and the amqp package's tests that replay the
// recording.
package amqptest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"testing"
)

// Want is the row one method, or a method and its answer, should make.
type Want struct {
	FrameType int64 `json:"frame_type"`
	Channel   int64 `json:"channel"`
	// The client's method and the server's, 0 0 when the row has none.
	ReqClass   int64 `json:"req_class_id"`
	ReqMethod  int64 `json:"req_method_id"`
	RespClass  int64 `json:"resp_class_id"`
	RespMethod int64 `json:"resp_method_id"`
	// ReqMsg and RespMsg are regular expressions the whole messages must
	// match (Lit quotes a literal one): the server's and the client's
	// properties carry versions.
	ReqMsg  string `json:"req_msg"`
	RespMsg string `json:"resp_msg"`
	// Sync: the row pairs two methods, so its latency is above 0.
	Sync bool `json:"sync"`
}

// Lit is a message that matches s only.
func Lit(s string) string { return regexp.QuoteMeta(s) }

func (w Want) String() string {
	return fmt.Sprintf("type %d ch %d req %d.%d %s resp %d.%d %s", w.FrameType, w.Channel, w.ReqClass, w.ReqMethod, w.ReqMsg, w.RespClass, w.RespMethod, w.RespMsg)
}

func rowString(r map[string]any) string {
	return fmt.Sprintf("type %d ch %d req %d.%d %s resp %d.%d %s latency %d", r["frame_type"], r["channel"], r["req_class_id"], r["req_method_id"], r["req_msg"],
		r["resp_class_id"], r["resp_method_id"], r["resp_msg"], r["latency"])
}

// Check matches each want with a row of its own and reports the rows and
// wants left over. The order of rows is not checked: a method's row is
// written when its answer comes, and an asynchronous method of one side
// can come before or after the other side's.
func Check(t testing.TB, rows []map[string]any, wants []Want) {
	t.Helper()
	used := make([]bool, len(rows))
	var missing []Want
	for _, w := range wants {
		found := false
		for i, r := range rows {
			if !used[i] && match(r, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, w)
		}
	}
	extra := 0
	for i, r := range rows {
		if !used[i] {
			extra++
			t.Logf("row not wanted: %s", rowString(r))
		}
	}
	for _, w := range missing {
		t.Logf("no row for: %s", w)
	}
	if len(missing) > 0 || extra > 0 {
		t.Errorf("%d rows for %d wants: %d wants without a row, %d rows not wanted", len(rows), len(wants), len(missing), extra)
	}
}

func match(r map[string]any, w Want) bool {
	lat, _ := r["latency"].(int64)
	if w.Sync != (lat > 0) {
		return false
	}
	for _, p := range [][2]any{{"frame_type", w.FrameType}, {"channel", w.Channel}, {"req_class_id", w.ReqClass},
		{"req_method_id", w.ReqMethod}, {"resp_class_id", w.RespClass}, {"resp_method_id", w.RespMethod}} {
		if r[p[0].(string)] != p[1] {
			return false
		}
	}
	return matches(r["req_msg"], w.ReqMsg) && matches(r["resp_msg"], w.RespMsg)
}

func matches(v any, re string) bool {
	s, _ := v.(string)
	ok, err := regexp.MatchString("^(?:"+re+")$", s)
	return err == nil && ok
}

// Save writes wants to path (beside a recording).
func Save(t testing.TB, path string, wants []Want) {
	t.Helper()
	b, err := json.MarshalIndent(wants, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Load reads the wants Save wrote.
func Load(t testing.TB, path string) []Want {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wants []Want
	if err := json.Unmarshal(b, &wants); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return wants
}
