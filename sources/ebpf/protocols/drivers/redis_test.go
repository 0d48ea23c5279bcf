package drivers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// redisSession runs what a service does with go-redis on one
// connection: the handshake (HELLO 3, CLIENT SETINFO), commands with
// replies of every RESP3 type, a pipeline, a transaction, an error;
// and pub/sub on a second connection, whose published messages are rows.
// The stmts are a command (query), its arguments as req_args shows them
// (params) and its reply (resp).
func redisSession(t *testing.T, port int) (cmds []stmt, pushes int) {
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), PoolSize: 1, Protocol: 3})
	defer c.Close()
	must := func(err error) {
		t.Helper()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
	}
	must(c.Set(ctx, "cart:1", "mug", time.Minute).Err())
	must(c.Get(ctx, "cart:1").Err())
	must(c.Get(ctx, "cart:none").Err())
	must(c.HSet(ctx, "item:7", "name", "kettle", "price", "25").Err())
	must(c.HGetAll(ctx, "item:7").Err())
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "hits")
		p.Incr(ctx, "hits")
		p.Expire(ctx, "hits", time.Minute)
		return nil
	})
	must(err)
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, "queue", "a", "b")
		p.LRange(ctx, "queue", 0, -1)
		return nil
	})
	must(err)
	if err := c.Do(ctx, "hget", "cart:1", "x").Err(); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("hget on a string: %v", err)
	}

	sub := c.Subscribe(ctx, "orders")
	if _, err := sub.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	pub := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), PoolSize: 1, Protocol: 2})
	defer pub.Close()
	for i := 0; i < 3; i++ {
		must(pub.Publish(ctx, "orders", fmt.Sprintf("order-%d", i)).Err())
		if _, err := sub.ReceiveMessage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sub.Close()
	return []stmt{
		{"SET", `["cart:1","mug","ex","60"]`, "OK"},
		{"GET", `["cart:1"]`, "mug"},
		{"GET", `["cart:none"]`, "<NULL>"},
		{"HSET", `["item:7","name","kettle","price","25"]`, "2"},
		{"HGETALL", `["item:7"]`, `{"name":"kettle","price":"25"}`},
		{"INCR", `["hits"]`, "1"},
		{"INCR", `["hits"]`, "2"},
		{"EXPIRE", `["hits","60"]`, "1"},
		{"MULTI", "[]", "OK"},
		{"LPUSH", `["queue","a","b"]`, "QUEUED"},
		{"LRANGE", `["queue","0","-1"]`, "QUEUED"},
		{"EXEC", "[]", `["2",["b","a"]]`},
		{"HGET", `["cart:1","x"]`, "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{"SUBSCRIBE", `["orders"]`, `["subscribe","orders","1"]`},
		{"PUBLISH", `["orders","order-0"]`, "1"},
		{"PUSH PUB", "", `["message","orders","order-0"]`},
		{"PUBLISH", `["orders","order-1"]`, "1"},
		{"PUSH PUB", "", `["message","orders","order-1"]`},
		{"PUBLISH", `["orders","order-2"]`, "1"},
		{"PUSH PUB", "", `["message","orders","order-2"]`},
	}, 3
}

func TestGoRedis(t *testing.T) {
	for _, side := range sides {
		t.Run(side.name, func(t *testing.T) {
			s := dbtest.StartRedis(t)
			tr, store := tracer(t, side)
			want, pushes := redisSession(t, s.Port)
			rows := settled(t, store, "redis_events", side.rows(s.Port))
			// Each connection opens with HELLO and the CLIENT commands
			// of go-redis's version (this server refuses some of them);
			// the session's commands follow, in order.
			var got []map[string]any
			hellos := map[string]int{}
			for i, r := range rows {
				t.Logf("row %d: %v | %v | %.80q", i, r["req_cmd"], r["req_args"], r["resp"])
				switch cmd := r["req_cmd"].(string); {
				case cmd == "HELLO":
					hellos[r["req_args"].(string)]++
				case strings.HasPrefix(cmd, "CLIENT "):
				default:
					got = append(got, r)
				}
			}
			if hellos[`["3"]`] < 2 || hellos[`["2"]`] != 1 {
				t.Errorf("HELLO rows %v: want one per connection, the publisher's in RESP2", hellos)
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			npush := 0
			for i, w := range want {
				r := got[i]
				if r["req_cmd"] != w.query || r["req_args"] != w.params || r["resp"] != w.resp {
					t.Errorf("row %d: %v %v → %q, want %v %v → %q", i, r["req_cmd"], r["req_args"], r["resp"], w.query, w.params, w.resp)
				}
				if r["req_cmd"] == "PUSH PUB" {
					npush++
				} else if lat := r["latency"].(int64); lat <= 0 || lat > int64(5*time.Second) {
					t.Errorf("row %d: latency %d", i, lat)
				}
			}
			if npush != pushes {
				t.Errorf("%d published messages, want %d", npush, pushes)
			}
			zero(t, tr, "redis.parse_errors", "redis.unmatched_responses")
		})
	}
}
