package redis

import (
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

// live parses the connections through a dbtest.Proxy as the tracer
// would on each side: one parser as the client, one as the server.
type live struct {
	t      *testing.T
	conns  map[int]*[2]*protocoltest.Harness
	chunks []dbtest.Chunk
}

func newLive(t *testing.T) *live { return &live{t: t, conns: map[int]*[2]*protocoltest.Harness{}} }

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

func (l *live) feed(c dbtest.Chunk) {
	l.chunks = append(l.chunks, c)
	h := l.conns[c.Conn]
	if h == nil {
		h = &[2]*protocoltest.Harness{}
		for i, role := range roles {
			h[i] = protocoltest.New(l.t, Protocol{}, protocols.Conn{
				Role: role, Stream: true,
				Local: netip.MustParseAddrPort("127.0.0.1:6379"), Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
			}, testConfig)
		}
		l.conns[c.Conn] = h
	}
	for i, role := range roles {
		h[i].Parser.Data(dbtest.Segment(c, role))
	}
}

// rows closes every connection's parsers and returns the rows of each
// side, connections in order.
func (l *live) rows() (client, server [][]map[string]any) {
	ids := make([]int, 0, len(l.conns))
	for id := range l.conns {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		h := l.conns[id]
		for _, x := range h {
			x.Parser.Close(time.Now().UnixNano())
		}
		client = append(client, h[0].Rows(Table.Name()))
		server = append(server, h[1].Rows(Table.Name()))
	}
	return client, server
}

func (l *live) counts(side int, name string) int64 {
	var n int64
	for _, h := range l.conns {
		n += h[side].Counts[name]
	}
	return n
}

type want struct{ cmd, args, resp string }

func check(t *testing.T, rows []map[string]any, wants []want) {
	t.Helper()
	if len(rows) != len(wants) {
		for _, r := range rows {
			t.Logf("row %q %q %q", r["req_cmd"], r["req_args"], r["resp"])
		}
		t.Fatalf("%d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		r := rows[i]
		resp := r["resp"]
		if prefix, ok := strings.CutSuffix(w.resp, "*"); ok && strings.HasPrefix(resp.(string), prefix) {
			resp = w.resp // a value that changes from run to run
		}
		if r["req_cmd"] != w.cmd || r["req_args"] != w.args || resp != w.resp {
			t.Errorf("row %d:\n got %q %q %q\nwant %q %q %q", i, r["req_cmd"], r["req_args"], r["resp"], w.cmd, w.args, w.resp)
		}
	}
}

func cli(t *testing.T, port int, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(dbtest.Need(t, "redis-cli"), append([]string{"-p", strconv.Itoa(port)}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestRedisCLI runs redis-cli against a real server in RESP2 and RESP3:
// strings, nulls, errors, lists, hashes (a map in RESP3), a container
// command, and the COMMAND DOCS redis-cli sends first.
func TestRedisCLI(t *testing.T) {
	s := dbtest.StartRedis(t)
	l := newLive(t)
	p := dbtest.NewProxy(t, s.Addr(), l.feed)
	cli(t, p.Port, "SET k v\nGET k\nGET nope\nINCR k\nRPUSH l a b c\nLRANGE l 0 -1\nHSET h f1 1 f2 2\nHGETALL h\nCLIENT SETNAME me\nDEL k l h\n")
	cli(t, p.Port, "HSET h f1 1\nHGETALL h\nGET nope\nSET n 1.5\nINCRBYFLOAT n 1\nSISMEMBER nope x\n", "-3")
	p.Close()
	dbtest.Record(t, "testdata/redis_cli.bin", l.chunks, 0)
	dbtest.Record(t, "testdata/redis_cli_resp3.bin", l.chunks, 1)
	client, server := l.rows()
	for side, conns := range [][][]map[string]any{client, server} {
		check(t, conns[0], cliRows)
		check(t, conns[1], cliRESP3Rows)
		for _, c := range []string{"parse_errors", "unmatched_responses", "gap_resyncs", "closed_before_response"} {
			if n := l.counts(side, c); n != 0 {
				t.Errorf("side %d: %s = %d", side+1, c, n)
			}
		}
	}
}

var cliRows = []want{
	{"COMMAND DOCS", "[]", `["*`},
	{"SET", `["k","v"]`, "OK"},
	{"GET", `["k"]`, "v"},
	{"GET", `["nope"]`, "<NULL>"},
	{"INCR", `["k"]`, "ERR value is not an integer or out of range"},
	{"RPUSH", `["l","a","b","c"]`, "3"},
	{"LRANGE", `["l","0","-1"]`, `["a","b","c"]`},
	{"HSET", `["h","f1","1","f2","2"]`, "2"},
	{"HGETALL", `["h"]`, `["f1","1","f2","2"]`},
	{"CLIENT SETNAME", `["me"]`, "OK"},
	{"DEL", `["k","l","h"]`, "3"},
}

var cliRESP3Rows = []want{
	{"HELLO", `["3"]`, `{"server":"redis","version":"*`},
	{"COMMAND DOCS", "[]", `{"*`},
	{"HSET", `["h","f1","1"]`, "1"},
	{"HGETALL", `["h"]`, `{"f1":"1"}`},
	{"GET", `["nope"]`, "<NULL>"},
	{"SET", `["n","1.5"]`, "OK"},
	{"INCRBYFLOAT", `["n","1"]`, "2.5"},
	{"SISMEMBER", `["nope","x"]`, "0"},
}

// TestPubSub subscribes with redis-cli (RESP2 and RESP3) to two
// channels, publishes to them and checks the subscriber's rows: the
// SUBSCRIBE with both confirmations, then one PUSH PUB row per message.
func TestPubSub(t *testing.T) {
	s := dbtest.StartRedis(t)
	for _, proto := range []string{"-2", "-3"} {
		t.Run(proto, func(t *testing.T) {
			l := newLive(t)
			p := dbtest.NewProxy(t, s.Addr(), l.feed)
			sub := exec.Command(dbtest.Need(t, "redis-cli"), "-p", strconv.Itoa(p.Port), proto, "SUBSCRIBE", "c1", "c2")
			out, err := sub.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 100)
			go func() {
				buf := make([]byte, 4096)
				var acc string
				for {
					n, err := out.Read(buf)
					acc += string(buf[:n])
					for {
						i := strings.IndexByte(acc, '\n')
						if i < 0 {
							break
						}
						lines <- acc[:i]
						acc = acc[i+1:]
					}
					if err != nil {
						close(lines)
						return
					}
				}
			}()
			waitFor := func(s string) {
				timeout := time.After(10 * time.Second)
				for {
					select {
					case line, ok := <-lines:
						if !ok {
							t.Fatalf("subscriber ended before %q", s)
						}
						if line == s {
							return
						}
					case <-timeout:
						t.Fatalf("no %q from the subscriber", s)
					}
				}
			}
			waitFor("c2")
			cli(t, s.Port, "", "PUBLISH", "c1", "hello")
			cli(t, s.Port, "", "PUBLISH", "c2", "world")
			waitFor("world")
			sub.Process.Kill()
			sub.Wait()
			p.Close()
			dbtest.Record(t, "testdata/pubsub"+proto+".bin", l.chunks, 0)
			client, server := l.rows()
			wants := []want{
				{"SUBSCRIBE", `["c1","c2"]`, "[\"subscribe\",\"c1\",\"1\"]\n[\"subscribe\",\"c2\",\"2\"]"},
				{"PUSH PUB", "", `["message","c1","hello"]`},
				{"PUSH PUB", "", `["message","c2","world"]`},
			}
			if proto == "-3" {
				wants = append([]want{{"HELLO", `["3"]`, `{"server":"redis","version":"*`}}, wants...)
			}
			check(t, client[0], wants)
			check(t, server[0], wants)
		})
	}
}

// TestBenchmarkPipelined runs redis-benchmark with 16 commands in each
// write: every SET and GET must make a row with its reply.
func TestBenchmarkPipelined(t *testing.T) {
	s := dbtest.StartRedis(t)
	l := newLive(t)
	p := dbtest.NewProxy(t, s.Addr(), l.feed)
	const n = 2000
	dbtest.Run(t, nil, dbtest.Need(t, "redis-benchmark"), "-p", strconv.Itoa(p.Port), "-n", strconv.Itoa(n), "-P", "16", "-c", "4", "-t", "set,get", "-q")
	p.Close()
	client, server := l.rows()
	for side, conns := range [][][]map[string]any{client, server} {
		by := map[string]int{}
		for _, rows := range conns {
			for _, r := range rows {
				by[r["req_cmd"].(string)]++
				switch r["req_cmd"] {
				case "SET":
					if r["resp"] != "OK" || !strings.HasPrefix(r["req_args"].(string), `["key:__rand_int__","VXK`) {
						t.Errorf("side %d: SET %q %q", side+1, r["req_args"], r["resp"])
					}
				case "GET":
					if r["req_args"] != `["key:__rand_int__"]` || !strings.HasPrefix(r["resp"].(string), "VXK") {
						t.Errorf("side %d: GET %q %.20q", side+1, r["req_args"], r["resp"])
					}
				}
			}
		}
		if by["SET"] != n || by["GET"] != n {
			t.Errorf("side %d: rows by command %v, want %d SET and GET", side+1, by, n)
		}
		t.Logf("side %d: rows by command %v", side+1, by)
		for _, c := range []string{"parse_errors", "unmatched_responses", "gap_resyncs"} {
			if n := l.counts(side, c); n != 0 {
				t.Errorf("side %d: %s = %d", side+1, c, n)
			}
		}
	}
}
