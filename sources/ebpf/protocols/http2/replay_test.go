package http2

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

// The recordings of live_test.go (PXQ_RECORD=1 refreshes them), and
// what their rows must be.
var recordings = []struct {
	file  string
	check func(t testing.TB, rows []row)
}{
	{"grpc", func(t testing.TB, rows []row) {
		calls := Calls()
		if len(rows) != len(calls) {
			t.Fatalf("%d rows, want %d", len(rows), len(calls))
		}
		for i, c := range calls {
			CheckGRPCRow(t, rows[i], c)
		}
	}},
	{"curl_get", func(t testing.TB, rows []row) { checkH2C(t, rows, 0) }},
	{"curl_post", func(t testing.TB, rows []row) { checkH2C(t, rows, 1) }},
	{"curl_big", func(t testing.TB, rows []row) { checkH2C(t, rows, 2) }},
	{"nghttp", func(t testing.TB, rows []row) { checkH2C(t, rows, 3, 4) }},
	{"h2load", func(t testing.TB, rows []row) {
		if len(rows) != 100 {
			t.Fatalf("%d rows, want 100", len(rows))
		}
		for _, r := range rows {
			if r["req_path"] != "/f" || r["resp_status"] != int64(200) || r["resp_body_size"] != int64(100) || r["resp_body"] != strings.Repeat("n", 100) {
				t.Fatalf("row %v", r)
			}
		}
	}},
	{"nghttp_push_padding", func(t testing.TB, rows []row) {
		if len(rows) != 2 {
			t.Fatalf("%d rows, want 2", len(rows))
		}
		paths := []any{rows[0]["req_path"], rows[1]["req_path"]}
		if !reflect.DeepEqual(paths, []any{"/f", "/g"}) && !reflect.DeepEqual(paths, []any{"/g", "/f"}) {
			t.Errorf("paths %v", paths)
		}
	}},
	{"curl_continuation", func(t testing.TB, rows []row) {
		if len(rows) != 1 || rows[0]["req_path"] != "/hello" || len(rows[0]["req_headers"].(string)) < 30000 {
			t.Fatalf("rows %v", rows)
		}
	}},
}

// checkH2C checks rows against the rows i… of TestH2CClients.
func checkH2C(t testing.TB, rows []row, i ...int) {
	t.Helper()
	if len(rows) != len(i) {
		t.Fatalf("%d rows, want %d", len(rows), len(i))
	}
	if len(i) == 2 && rows[0]["req_path"] == "/hello?x=3" {
		rows = []row{rows[1], rows[0]}
	}
	for j, n := range i {
		checkH2CRow(t, n, rows[j])
	}
}

func recordingConfig(file string) protocols.Config {
	cfg := testConfig
	if file == "curl_continuation" {
		cfg.MaxHeaderBytes = 32 << 10
	}
	return cfg
}

// replay parses chunks as role, in pieces of split bytes (whole chunks
// when 0).
func replay(t testing.TB, chunks []dbtest.Chunk, role protocols.Role, cfg protocols.Config, split int) *protocoltest.Harness {
	h := newHarness(t, role, cfg)
	for _, c := range chunks {
		seg := dbtest.Segment(c, role)
		for b := seg.Data; len(b) > 0; {
			n := len(b)
			if split > 0 {
				n = min(n, split)
			}
			seg.Data = b[:n]
			h.Parser.Data(seg)
			b = b[n:]
		}
	}
	h.Parser.Close(chunks[len(chunks)-1].TS + 1)
	return h
}

// TestReplay replays the recordings of real peers on both sides, whole
// and cut at every byte and at other sizes: the rows are those the peers
// exchanged, and the same however the bytes are cut.
func TestReplay(t *testing.T) {
	for _, rec := range recordings {
		chunks := dbtest.Replay(t, "testdata/"+rec.file+".bin")
		cfg := recordingConfig(rec.file)
		for _, role := range roles {
			whole := replay(t, chunks, role, cfg, 0)
			rows := whole.Rows("http_events")
			rec.check(t, rows)
			if len(whole.Counts) != 0 {
				t.Errorf("%s role %d: counters %v", rec.file, role, whole.Counts)
			}
			for _, split := range []int{1, 2, 3, 7, 9, 10, 100, 4096} {
				h := replay(t, chunks, role, cfg, split)
				if got := h.Rows("http_events"); !reflect.DeepEqual(got, rows) || len(h.Counts) != 0 {
					t.Fatalf("%s role %d split %d: rows differ from the whole replay's (counters %v)", rec.file, role, split, h.Counts)
				}
			}
		}
	}
}

// rowKey is what HPACK decoded in a row, to match rows of partial replays
// against the whole replay's.
func rowKey(r row) string {
	return fmt.Sprint(r["req_headers"], r["resp_headers"], r["req_path"], r["req_method"], r["resp_status"])
}

// TestMidStream replays each recording from each of its chunks on, as a
// connection that predates the tracer: the segments go through the
// inference rule until it matches (its role must be the sender's), then
// to the parser. Every row must be one of the whole replay's; none may
// be decoded wrong. Recordings whose encoders keep no dynamic table
// (h2load_notable) must give the row of every stream begun after the
// match.
func TestMidStream(t *testing.T) {
	for _, file := range []string{"grpc", "h2load", "h2load_notable", "nghttp", "curl_big"} {
		chunks := dbtest.Replay(t, "testdata/"+file+".bin")
		var matched, rowsSeen int
		for _, role := range roles {
			full := map[string]row{}
			for _, r := range replay(t, chunks, role, testConfig, 0).Rows("http_events") {
				full[rowKey(r)] = r
			}
			for k := 1; k < len(chunks); k++ {
				at := -1
				for i := k; i < len(chunks) && i < k+16; i++ {
					if m, req := (Protocol{}).Infer(chunks[i].Data, true); m {
						if req != chunks[i].ToServer {
							t.Fatalf("%s chunk %d: inferred request %v from the %v side", file, i, req, chunks[i].ToServer)
						}
						at = i
						break
					}
				}
				if at < 0 {
					continue
				}
				matched++
				h := replay(t, chunks[at:], role, testConfig, 0)
				rows := h.Rows("http_events")
				rowsSeen += len(rows)
				for _, r := range rows {
					w, ok := full[rowKey(r)]
					if !ok {
						t.Fatalf("%s from chunk %d, role %d: a row not in the whole replay: %v", file, at, role, r)
					}
					if r["req_path"] != w["req_path"] {
						t.Fatalf("%s: %v", file, r)
					}
				}
				if file == "h2load_notable" {
					// Streams begun at or after the match all decode.
					want := 0
					for _, w := range full {
						if w["time_"].(int64)-w["latency"].(int64) >= chunks[at].TS {
							want++
						}
					}
					if len(rows) < want {
						t.Errorf("%s from chunk %d, role %d: %d rows, want at least %d (counters %v)", file, at, role, len(rows), want, h.Counts)
					}
				}
			}
		}
		t.Logf("%s: %d starts matched, %d rows", file, matched, rowsSeen)
		if matched == 0 {
			t.Errorf("%s: inference never matched mid-stream", file)
		}
	}
}

// TestGaps replays the recordings with bytes lost: each chunk in turn
// loses all of it, its first half, its last half or its middle. Rows
// never carry wrongly decoded headers, lost DATA keeps its size, and the
// parser goes on.
func TestGaps(t *testing.T) {
	for _, file := range []string{"grpc", "curl_big", "nghttp_push_padding", "h2load"} {
		chunks := dbtest.Replay(t, "testdata/"+file+".bin")
		for _, role := range roles {
			full := map[string]row{}
			whole := replay(t, chunks, role, testConfig, 0).Rows("http_events")
			for _, r := range whole {
				full[rowKey(r)] = r
			}
			var total int
			for k := 0; k < len(chunks); k += 1 + len(chunks)/50 {
				for cut := 0; cut < 4; cut++ {
					h := newHarness(t, role, testConfig)
					for i, c := range chunks {
						seg := dbtest.Segment(c, role)
						if i != k {
							h.Parser.Data(seg)
							continue
						}
						n := len(c.Data)
						a, b := []int{0, 0, n / 2, n / 4}[cut], []int{n, n / 2, n, 3 * n / 4}[cut]
						seg.Data = c.Data[:a]
						h.Parser.Data(seg)
						h.Parser.Gap(seg.Dir, b-a)
						seg.Data = c.Data[b:]
						h.Parser.Data(seg)
					}
					h.Parser.Close(chunks[len(chunks)-1].TS + 1)
					rows := h.Rows("http_events")
					total += len(rows)
					for _, r := range rows {
						w, ok := full[rowKey(r)]
						if !ok {
							t.Fatalf("%s role %d, chunk %d cut %d lost: a row not in the whole replay: %v", file, role, k, cut, r)
						}
						if ct := r["content_type"]; ct != int64(2) && (r["req_body_size"] != w["req_body_size"] || r["resp_body_size"] != w["resp_body_size"]) {
							t.Errorf("%s role %d chunk %d cut %d: body sizes %v %v, want %v %v", file, role, k, cut,
								r["req_body_size"], r["resp_body_size"], w["req_body_size"], w["resp_body_size"])
						}
					}
				}
			}
			if total == 0 {
				t.Errorf("%s role %d: no rows with gaps", file, role)
			}
		}
	}
}

// TestInfer checks the rule: the preface, whole, matches as a request
// and cut short does not; frames mid-stream match only when a header
// block's first field tells the side; no other protocol's first bytes
// match (whole or cut anywhere), and no other protocol's rule matches
// HTTP/2's first bytes.
func TestInfer(t *testing.T) {
	chunks := dbtest.Replay(t, "testdata/grpc.bin")
	if m, req := (Protocol{}).Infer(chunks[0].Data, true); !m || !req {
		t.Errorf("the client's first bytes: %v %v", m, req)
	}
	for i := range preface {
		if m, _ := (Protocol{}).Infer([]byte(preface[:i]), true); m {
			t.Errorf("the preface cut at %d matched", i)
		}
	}
	if m, _ := (Protocol{}).Infer([]byte(preface), false); m {
		t.Error("a datagram matched")
	}
	for name, b := range dbtest.FirstBytes {
		for i := 0; i <= len(b); i++ {
			if m, _ := (Protocol{}).Infer(b[:i], true); m {
				t.Errorf("%s cut at %d matched", name, i)
			}
		}
	}
	// The server's first bytes (SETTINGS) say nothing of the side.
	if m, _ := (Protocol{}).Infer(chunks[1].Data, true); m {
		t.Errorf("the server's SETTINGS matched")
	}
	c := newPeer(false)
	c.take()
	for _, tc := range []struct {
		kv          []string
		match, req  bool
		streamEven  bool
		description string
	}{
		{[]string{":method", "GET", ":path", "/"}, true, true, false, "static :method"},
		{[]string{":status", "200"}, true, false, false, "static :status"},
		{[]string{":status", "201"}, true, false, false, ":status literal with a static name"},
		{[]string{":path", "/x", ":method", "PUT"}, true, true, false, ":path with a static name"},
		{[]string{"x-custom", "1"}, false, false, false, "no pseudo-header first"},
		{[]string{":method", "GET"}, false, false, true, "a request on an even stream"},
	} {
		id := uint32(1)
		if tc.streamEven {
			id = 2
		}
		c.headers(id, true, tc.kv...)
		m, req := (Protocol{}).Infer(c.take(), true)
		if m != tc.match || (m && req != tc.req) {
			t.Errorf("%s: %v %v", tc.description, m, req)
		}
	}
}
