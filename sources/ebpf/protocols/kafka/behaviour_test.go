package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// TestAcksZero: a Produce with acks 0 has no response; its row is
// written when the request ends, and the next request pairs with the
// next response.
func TestAcksZero(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	h.send(true, produceReq(1, 0, "t", batch(3, 10)), 0)
	h.send(true, heartbeatReq(2, "c", "g", 1, "m"), 0)
	h.send(false, heartbeatResp(2, 0), 0)
	rows := h.rows()
	if len(rows) != 2 || rows[0]["req_cmd"] != int64(0) || rows[0]["resp"] != "" || rows[0]["latency"] != int64(0) ||
		rows[1]["req_cmd"] != int64(12) || rows[1]["resp"] != `{"throttle_time_ms":0,"error_code":0}` {
		t.Fatalf("rows %v", rows)
	}
	if got := rows[0]["req_body"]; got != `{"transactional_id":null,"acks":0,"timeout_ms":1000,"topics":[{"name":"t","partitions":[{"index":0,"message_set":{"size":71,"batches":1,"records":3}}]}]}` {
		t.Errorf("req_body %s", got)
	}
	if h.c.Pending() != 0 {
		t.Errorf("%d pending", h.c.Pending())
	}
}

// TestRecordSets: batches are counted, a batch cut off by the end of the
// set is not, and bytes lost inside a set keep the message with its size.
func TestRecordSets(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	set := cat(batch(2, 5), batch(4, 0), batch(9, 40)[:30])
	h.send(true, produceReq(1, 1, "t", set), 0)
	h.send(false, produceResp(1, "t", 42), 0)
	// A gap inside the second request's records.
	req := produceReq(2, 1, "t", batch(5, 200))
	h.send(true, req[:100], 0)
	h.c.Gap(protocols.Ingress, 50)
	h.send(true, req[150:], 0)
	h.send(false, produceResp(2, "t", 44), 0)
	rows := h.rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	ms := obj(obj(arr(obj(arr(jsonOf(t, rows[0]["req_body"])["topics"])[0])["partitions"])[0])["message_set"])
	if num(ms["batches"]) != 2 || num(ms["records"]) != 6 || num(ms["size"]) != int64(len(set)) {
		t.Errorf("message_set %v", ms)
	}
	if !strings.Contains(rows[0]["resp"].(string), `"base_offset":42,`) {
		t.Errorf("resp %s", rows[0]["resp"])
	}
	ms = obj(obj(arr(obj(arr(jsonOf(t, rows[1]["req_body"])["topics"])[0])["partitions"])[0])["message_set"])
	if _, ok := ms["records"]; ok || num(ms["size"]) != int64(len(batch(5, 200))) {
		t.Errorf("message_set after a gap %v", ms)
	}
	if len(h.Counts) != 0 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestGapResync: bytes lost across messages drop the partial message;
// the stream resumes at the next segment that starts a request, and a
// response pairs with the request of its correlation id.
func TestGapResync(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	h.send(true, heartbeatReq(1, "c", "g", 1, "m"), 0)
	h.send(true, heartbeatReq(2, "c", "g", 1, "m")[:10], 0)
	h.c.Gap(protocols.Egress, 100) // the rest of request 2 and more
	h.send(true, []byte("garbage that is not a request"), 0)
	h.send(true, heartbeatReq(3, "c", "g", 1, "m"), 0)
	h.send(false, heartbeatResp(1, 0), 0)
	h.send(false, heartbeatResp(2, 0), 0) // its request was lost
	h.send(false, heartbeatResp(3, 0), 0)
	rows := h.rows()
	if len(rows) != 2 || !strings.Contains(rows[1]["req_body"].(string), `"generation_id":1`) {
		t.Fatalf("rows %v", rows)
	}
	// A response gap: the lost response's request is dropped when the
	// next response names the request after it.
	h.send(true, heartbeatReq(4, "c", "g", 1, "m"), 0)
	h.send(true, heartbeatReq(5, "c", "g", 1, "m"), 0)
	h.send(false, heartbeatResp(4, 0)[:3], 0)
	h.c.Gap(protocols.Ingress, 20)
	h.send(false, heartbeatResp(5, 0), 0)
	if n := len(h.rows()); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	for _, k := range []string{"gap_resyncs", "unmatched_responses", "requests_lost"} {
		if h.Counts[k] == 0 {
			t.Errorf("%s not counted: %v", k, h.Counts)
		}
	}
	if h.c.Pending() != 0 {
		t.Errorf("%d pending", h.c.Pending())
	}
}

// TestResponseBeforeRequest: a response whose read returned before its
// request's write (another thread) waits for the request.
func TestResponseBeforeRequest(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	h.send(false, heartbeatResp(9, 0), 0)
	h.send(true, heartbeatReq(9, "c", "g", 1, "m"), 0)
	rows := h.rows()
	if len(rows) != 1 || rows[0]["resp"] != `{"throttle_time_ms":0,"error_code":0}` || rows[0]["latency"] != int64(0) {
		t.Fatalf("rows %v", rows)
	}
	if h.Counts["responses_before_request"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestUnparsed: an API key the parser does not read makes a row with its
// client id and no bodies; an undecodable body makes a row without it.
func TestUnparsed(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	h.send(true, msg(reqHead(71, 0, 1, "tele"), []byte{0, 0, 0, 0}), 0)
	h.send(false, msg(be32(1), []byte{1, 2, 3}), 0)
	h.send(true, msg(reqHead(keyHeartbeat, 1, 2, "c"), str("g")), 0) // cut short
	h.send(false, heartbeatResp(2, 0), 0)
	rows := h.rows()
	if len(rows) != 2 || rows[0]["req_cmd"] != int64(71) || rows[0]["client_id"] != "tele" || rows[0]["req_body"] != "" || rows[0]["resp"] != "" {
		t.Fatalf("rows %v", rows)
	}
	if rows[1]["req_body"] != "" || rows[1]["resp"] == "" || rows[1]["client_id"] != "c" {
		t.Errorf("row %v", rows[1])
	}
	if h.Counts["unparsed_requests"] != 1 || h.Counts["decode_errors"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestBounds: JSON past MaxHeaderBytes stops at whole elements, stays
// JSON and says it was cut; long strings end with an ellipsis; a
// consumer protocol structure that does not decode is shown by its size.
func TestBounds(t *testing.T) {
	cfg := testConfig
	cfg.MaxHeaderBytes = 200
	h := newHarness(t, protocols.RoleServer, cfg)
	// A Metadata v1 request for 40 topics, one with a long name.
	topics := [][]byte{be32(40)}
	for i := range 40 {
		name := "topic-" + strings.Repeat("x", i)
		if i == 0 {
			name = strings.Repeat("long", 100)
		}
		topics = append(topics, str(name))
	}
	h.send(true, msg(reqHead(keyMetadata, 1, 1, "c"), cat(topics...)), 0)
	h.send(false, msg(be32(1), be32(0), be32(-1), be32(0)), 0)
	// A SyncGroup v0 response whose assignment is not one.
	h.send(true, msg(reqHead(keySyncGroup, 0, 2, "c"), str("g"), be32(1), str("m"), be32(0)), 0)
	h.send(false, msg(be32(2), be16(0), be32(5), []byte{0, 0, 9, 9, 9}), 0)
	rows := h.rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	req := jsonOf(t, rows[0]["req_body"])
	if req["truncated"] != true || len(arr(req["topics"])) >= 40 || len(rows[0]["req_body"].(string)) > 300 {
		t.Errorf("req_body %s", rows[0]["req_body"])
	}
	if name := obj(arr(req["topics"])[0])["name"].(string); len(name) != maxString+len("…") || !strings.HasSuffix(name, "…") {
		t.Errorf("long name %q", name)
	}
	if rows[1]["resp"] != `{"throttle_time_ms":0,"error_code":0,"assignment":{"size":5}}` && rows[1]["resp"] != `{"error_code":0,"assignment":{"size":5}}` {
		t.Errorf("resp %s", rows[1]["resp"])
	}
}

// TestCloseAndTimeout: unanswered requests are dropped after the timeout
// and counted at close.
func TestCloseAndTimeout(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	h.send(true, heartbeatReq(1, "c", "g", 1, "m"), 0)
	h.c.Poll(h.ts + int64(2*time.Minute))
	h.send(true, heartbeatReq(2, "c", "g", 1, "m"), 0)
	h.send(true, heartbeatReq(3, "c", "g", 1, "m")[:9], 0)
	h.c.Close(h.ts)
	if h.Counts["requests_timed_out"] != 1 || h.Counts["closed_before_response"] != 1 || h.Counts["incomplete_at_close"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
	if h.c.Pending() != 0 || len(h.rows()) != 0 {
		t.Errorf("pending %d rows %d", h.c.Pending(), len(h.rows()))
	}
}
