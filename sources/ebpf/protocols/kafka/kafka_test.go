package kafka

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/types"
)

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// chunk is one read or write of a recorded connection.
type chunk struct {
	conn     int
	toServer bool
	data     []byte
}

// readRecording reads a recording of test/kafka (its record function):
// per chunk, 'C' (written by the client) or 'S', the connection's
// number, the length (4 bytes, big-endian) and the bytes.
func readRecording(t testing.TB, path string) []chunk {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []chunk
	for len(b) > 0 {
		if len(b) < 6 || (b[0] != 'C' && b[0] != 'S') {
			t.Fatalf("%s: malformed at %d bytes from the end", path, len(b))
		}
		n := int(binary.BigEndian.Uint32(b[2:6]))
		if len(b) < 6+n {
			t.Fatalf("%s: chunk of %d bytes cut short", path, n)
		}
		out = append(out, chunk{conn: int(b[1]), toServer: b[0] == 'C', data: b[6 : 6+n]})
		b = b[6+n:]
	}
	return out
}

func recordings(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob("testdata/*.bin")
	if len(files) == 0 {
		t.Fatal("no recordings in testdata (go test ./... in test/kafka with PXQ_RECORD=1 makes them)")
	}
	return files
}

// harness is one connection's parser, traced on one side.
type harness struct {
	*protocoltest.Harness
	c    *conn
	role protocols.Role
	ts   int64
}

func newHarness(t testing.TB, role protocols.Role, cfg protocols.Config) *harness {
	h := protocoltest.New(t, Protocol{}, protocols.Conn{
		Role: role, Stream: true,
		Local: netip.MustParseAddrPort("127.0.0.1:9092"), Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
	}, cfg)
	return &harness{Harness: h, c: h.Parser.(*conn), role: role, ts: 1_000_000}
}

// send feeds b as written by the client (toServer) or the server, in
// pieces of split bytes (all at once when split is 0), at one time.
func (h *harness) send(toServer bool, b []byte, split int) {
	h.ts += 10_000
	dir := protocols.Ingress
	if toServer == (h.role == protocols.RoleClient) {
		dir = protocols.Egress
	}
	for len(b) > 0 {
		n := len(b)
		if split > 0 {
			n = min(split, n)
		}
		h.c.Data(protocols.Segment{Dir: dir, TS: h.ts, Data: b[:n]})
		b = b[n:]
	}
}

func (h *harness) rows() []map[string]any { return h.Rows(Table.Name()) }

// replay parses a recording's connections on one side, each in pieces of
// split bytes, and returns their rows, connection by connection, and the
// parsers' counters.
func replay(t testing.TB, chunks []chunk, role protocols.Role, split int, cfg protocols.Config) ([]map[string]any, map[string]int64) {
	t.Helper()
	hs := map[int]*harness{}
	var ids []int
	for _, c := range chunks {
		h := hs[c.conn]
		if h == nil {
			h = newHarness(t, role, cfg)
			hs[c.conn] = h
			ids = append(ids, c.conn)
		}
		h.send(c.toServer, c.data, split)
	}
	sort.Ints(ids)
	var rows []map[string]any
	counts := map[string]int64{}
	for _, id := range ids {
		h := hs[id]
		h.c.Close(h.ts)
		rows = append(rows, h.rows()...)
		for k, v := range h.Counts {
			counts[k] += v
		}
	}
	return rows, counts
}

// content is what a row tells of its request, for comparing parses.
func content(r map[string]any) string {
	return fmt.Sprintf("%v %q %s %s", r["req_cmd"], r["client_id"], r["req_body"], r["resp"])
}

func jsonOf(t testing.TB, s any) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s.(string)), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return m
}

func arr(v any) []any          { a, _ := v.([]any); return a }
func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func num(v any) int64          { f, _ := v.(float64); return int64(f) }

// TestRecordings parses the recorded produce/consume cycles of franz-go
// at the protocol versions of each Kafka release (test/kafka records
// them), whole, byte by byte and in odd pieces, on both sides: every
// parse gives the same rows, every request is decoded, and the rows tell
// the cycle: 12 records produced and fetched, a group joined, synced,
// heartbeat, committed and left.
func TestRecordings(t *testing.T) {
	for _, file := range recordings(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".bin")
		t.Run(name, func(t *testing.T) {
			chunks := readRecording(t, file)
			base, counts := replay(t, chunks, protocols.RoleServer, 0, testConfig)
			for k, v := range counts {
				if k != "closed_before_response" && k != "unparsed_requests" {
					t.Errorf("counter %s = %d", k, v)
				}
			}
			checkCycleRows(t, name, base)
			for _, role := range roles {
				for _, split := range []int{1, 3, 7, 100} {
					rows, _ := replay(t, chunks, role, split, testConfig)
					if len(rows) != len(base) {
						t.Fatalf("role %d split %d: %d rows, want %d", role, split, len(rows), len(base))
					}
					for i := range rows {
						if content(rows[i]) != content(base[i]) {
							t.Fatalf("role %d split %d: row %d\n got %s\nwant %s", role, split, i, content(rows[i]), content(base[i]))
						}
					}
				}
			}
		})
	}
}

// checkCycleRows checks what the rows of a recorded cycle tell: its
// clients' ids begin with its name, its topic is t-NAME.
func checkCycleRows(t *testing.T, name string, rows []map[string]any) {
	t.Helper()
	keys := map[int64]int{}
	produced, fetched := int64(0), int64(0)
	committed := map[int64]int64{}
	for _, r := range rows {
		k := r["req_cmd"].(int64)
		keys[k]++
		if _, ok := apis[int16(k)]; !ok {
			if r["req_body"] != "" || r["resp"] != "" {
				t.Errorf("API key %d is not parsed but has a body", k)
			}
			continue
		}
		req, resp := jsonOf(t, r["req_body"]), jsonOf(t, r["resp"])
		if req == nil || resp == nil {
			t.Errorf("API key %d: req_body %q resp %q", k, r["req_body"], r["resp"])
		}
		if !strings.HasPrefix(r["client_id"].(string), name+"-") {
			t.Errorf("client_id %q", r["client_id"])
		}
		switch k {
		case keyProduce:
			for _, tp := range arr(req["topics"]) {
				if obj(tp)["name"] != "t-"+name {
					t.Errorf("produce to %v", tp)
				}
				for _, p := range arr(obj(tp)["partitions"]) {
					produced += num(obj(obj(p)["message_set"])["records"])
				}
			}
		case keyFetch:
			for _, tp := range arr(resp["topics"]) {
				for _, p := range arr(obj(tp)["partitions"]) {
					fetched += num(obj(obj(p)["message_set"])["records"])
				}
			}
		case keyOffsetCommit:
			for _, tp := range arr(req["topics"]) {
				for _, p := range arr(obj(tp)["partitions"]) {
					committed[num(obj(p)["index"])] = num(obj(p)["committed_offset"])
				}
			}
		case keySyncGroup:
			if len(arr(obj(resp["assignment"])["assigned_partitions"])) != 1 {
				t.Errorf("sync response %s", r["resp"])
			}
		}
	}
	if produced != 12 || fetched != 12 || committed[0]+committed[1]+committed[2] != 12 {
		t.Errorf("%d records produced, %d fetched, %v committed; the cycle has 12", produced, fetched, committed)
	}
	for _, k := range []int64{keyProduce, keyFetch, keyMetadata, keyOffsetCommit, keyOffsetFetch, keyFindCoordinator,
		keyJoinGroup, keyLeaveGroup, keySyncGroup, keyApiVersions, keyListOffsets} {
		if keys[k] == 0 {
			t.Errorf("no row of API key %d (%v)", k, keys)
		}
	}
}

// TestEveryColumn checks every column of a row.
func TestEveryColumn(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	h.Conn.UPID = types.UInt128Value{High: 5, Low: 6}
	h.send(true, heartbeatReq(7, "me", "g", 3, "m-1"), 0)
	start := h.ts
	h.send(false, heartbeatResp(7, 27), 0)
	rows := h.rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	want := map[string]any{
		"time_": h.ts, "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(9092),
		"trace_role": int64(2), "encrypted": false,
		"req_cmd": int64(12), "client_id": "me",
		"req_body": `{"group_id":"g","generation_id":3,"member_id":"m-1"}`,
		"resp":     `{"throttle_time_ms":0,"error_code":27}`, "latency": h.ts - start,
	}
	if len(rows[0]) != len(Table.Relation()) || len(want) != len(rows[0]) {
		t.Fatalf("%d columns, declared %d, checked %d", len(rows[0]), len(Table.Relation()), len(want))
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, rows[0][k], v)
		}
	}
}

// Hand-made messages, for what real clients rarely send.

func be16(v int) []byte   { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int) []byte   { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func str(s string) []byte { return append(be16(len(s)), s...) }

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// msg prefixes a message with its size.
func msg(b ...[]byte) []byte {
	m := cat(b...)
	return append(be32(len(m)), m...)
}

// reqHead is a request header v1.
func reqHead(key, version, corr int, clientID string) []byte {
	return cat(be16(key), be16(version), be32(corr), str(clientID))
}

// heartbeatReq is a Heartbeat v1 request.
func heartbeatReq(corr int, clientID, group string, gen int, member string) []byte {
	return msg(reqHead(keyHeartbeat, 1, corr, clientID), str(group), be32(gen), str(member))
}

func heartbeatResp(corr, errCode int) []byte { return msg(be32(corr), be32(0), be16(errCode)) }

// produceReq is a Produce v3 request of one partition holding batch.
func produceReq(corr, acks int, topic string, batch []byte) []byte {
	return msg(reqHead(keyProduce, 3, corr, "p"), be16(0xffff), be16(acks), be32(1000),
		be32(1), str(topic), be32(1), be32(0), be32(len(batch)), batch)
}

func produceResp(corr int, topic string, base int) []byte {
	return msg(be32(corr), be32(1), str(topic), be32(1), be32(0), be16(0),
		be32(0), be32(base), be32(-1), be32(-1), be32(0))
}

// batch is a record batch (v2) header claiming n records, with pad bytes
// of records after it.
func batch(n, pad int) []byte {
	b := make([]byte, batchHeadV2+pad)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	b[batchMagic] = 2
	binary.BigEndian.PutUint32(b[batchRecords:], uint32(n))
	return b
}

// TestMidStream starts parsing connections in the middle, as for those
// open before the tracer: inference takes the first request that starts
// a segment, and the rows from there are those of the whole parse.
func TestMidStream(t *testing.T) {
	for _, file := range recordings(t)[:4] {
		started := 0
		byConn := map[int][]chunk{}
		for _, c := range readRecording(t, file) {
			byConn[c.conn] = append(byConn[c.conn], c)
		}
		for id, chunks := range byConn {
			full, _ := replay(t, chunks, protocols.RoleServer, 0, testConfig)
			for skip := 1; skip < len(chunks); skip += 3 {
				// The tracer gathers a direction's segments until a rule
				// matches (up to 512 bytes).
				var probe []byte
				start := -1
				for i := skip; i < len(chunks) && start < 0; i++ {
					if !chunks[i].toServer {
						probe = nil
						continue
					}
					if probe = append(probe, chunks[i].data...); len(probe) > 512 {
						probe = chunks[i].data
					}
					if m, req := (Protocol{}).Infer(probe, true); m && req {
						start = i
					}
				}
				if start < 0 {
					continue
				}
				started++
				h := newHarness(t, protocols.RoleServer, testConfig)
				h.send(true, probe, 0)
				for _, c := range chunks[start+1:] {
					h.send(c.toServer, c.data, 0)
				}
				h.c.Close(h.ts)
				rows := h.rows()
				if len(rows) > len(full) {
					t.Fatalf("%s conn %d from chunk %d: %d rows, the whole parse %d", file, id, skip, len(rows), len(full))
				}
				for i, r := range rows {
					if w := full[len(full)-len(rows)+i]; content(r) != content(w) {
						t.Fatalf("%s conn %d from chunk %d: row %d\n got %s\nwant %s", file, id, skip, i, content(r), content(w))
					}
				}
			}
		}
		if started < 10 {
			t.Errorf("%s: inference started %d connections mid-stream", file, started)
		}
	}
}
