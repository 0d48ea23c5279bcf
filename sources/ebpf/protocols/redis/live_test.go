package redis

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

type want struct{ cmd, args, resp string }

// check checks rows against wants, in order; a resp ending in "*"
// stands for any that begins so (dbtest.Wild).
func check(t *testing.T, rows []map[string]any, wants []want) {
	t.Helper()
	dbtest.CheckRows(t, rows, wants, func(r map[string]any, w want) want {
		return want{r["req_cmd"].(string), r["req_args"].(string), dbtest.Wild(r["resp"], w.resp)}
	})
}

// cli runs redis-cli with stdin and args on port.
func cli(t *testing.T, port int, stdin string, args ...string) string {
	t.Helper()
	return dbtest.RunInput(t, nil, stdin, dbtest.Need(t, "redis-cli"), append([]string{"-p", strconv.Itoa(port)}, args...)...)
}

// TestRedisCLI runs redis-cli against a real server in RESP2 and RESP3:
// strings, nulls, errors, lists, hashes (a map in RESP3), a container
// command, and the COMMAND DOCS redis-cli sends first.
func TestRedisCLI(t *testing.T) {
	s := dbtest.StartRedis(t)
	l := target.Live(t)
	p := dbtest.NewProxy(t, s.Addr(), l.Feed)
	cli(t, p.Port, "SET k v\nGET k\nGET nope\nINCR k\nRPUSH l a b c\nLRANGE l 0 -1\nHSET h f1 1 f2 2\nHGETALL h\nCLIENT SETNAME me\nDEL k l h\n")
	cli(t, p.Port, "HSET h f1 1\nHGETALL h\nGET nope\nSET n 1.5\nINCRBYFLOAT n 1\nSISMEMBER nope x\n", "-3")
	p.Close()
	dbtest.Record(t, "testdata/redis_cli.bin", l.Chunks, 0)
	dbtest.Record(t, "testdata/redis_cli_resp3.bin", l.Chunks, 1)
	client, server := l.ConnRows()
	for _, conns := range [][][]map[string]any{client, server} {
		check(t, conns[0], cliRows)
		check(t, conns[1], cliRESP3Rows)
	}
	l.Zero(t, "parse_errors", "unmatched_responses", "gap_resyncs", "closed_before_response")
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

// pubsubRows are the rows of a subscriber to c1 and c2 that gets a
// message on each, in RESP2, or in RESP3 after its HELLO 3.
func pubsubRows(resp3 bool) []want {
	w := []want{
		{"SUBSCRIBE", `["c1","c2"]`, "[\"subscribe\",\"c1\",\"1\"]\n[\"subscribe\",\"c2\",\"2\"]"},
		{"PUSH PUB", "", `["message","c1","hello"]`},
		{"PUSH PUB", "", `["message","c2","world"]`},
	}
	if resp3 {
		w = append([]want{{"HELLO", `["3"]`, `{"server":"redis","version":"*`}}, w...)
	}
	return w
}

// TestPubSub subscribes with redis-cli (RESP2 and RESP3) to two
// channels, publishes to them and checks the subscriber's rows: the
// SUBSCRIBE with both confirmations, then one PUSH PUB row per message.
func TestPubSub(t *testing.T) {
	s := dbtest.StartRedis(t)
	for _, proto := range []string{"-2", "-3"} {
		t.Run(proto, func(t *testing.T) {
			l := target.Live(t)
			p := dbtest.NewProxy(t, s.Addr(), l.Feed)
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
			dbtest.Record(t, "testdata/pubsub"+proto+".bin", l.Chunks, 0)
			client, server := l.ConnRows()
			wants := pubsubRows(proto == "-3")
			check(t, client[0], wants)
			check(t, server[0], wants)
		})
	}
}

// TestBenchmarkPipelined runs redis-benchmark with 16 commands in each
// write: every SET and GET must make a row with its reply.
func TestBenchmarkPipelined(t *testing.T) {
	s := dbtest.StartRedis(t)
	l := target.Live(t)
	p := dbtest.NewProxy(t, s.Addr(), l.Feed)
	const n = 2000
	dbtest.Run(t, nil, dbtest.Need(t, "redis-benchmark"), "-p", strconv.Itoa(p.Port), "-n", strconv.Itoa(n), "-P", "16", "-c", "4", "-t", "set,get", "-q")
	p.Close()
	client, server := l.ConnRows()
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
	}
	l.Zero(t, "parse_errors", "unmatched_responses", "gap_resyncs")
}
