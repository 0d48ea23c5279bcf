package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/sources/pxtrace/pxtracetest"
)

// tracingBackends are a broker over two agents and an embedded engine,
// every engine with its own tracepoints, stopped when the test ends.
func tracingBackends(t *testing.T) map[string]query.Backend {
	newEngine := func(asid uint32) *engine.Engine {
		eng := brokertest.NewEngine(t, brokertest.Meta{}, asid)
		t.Cleanup(func() { eng.Tracepoints().Close() })
		return eng
	}
	var addrs []string
	for asid := uint32(1); asid <= 2; asid++ {
		addrs = append(addrs, brokertest.StartAgent(t, newEngine(asid), asid).Addr)
	}
	b, err := broker.New(broker.Config{Agents: addrs, Meta: brokertest.Meta{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return map[string]query.Backend{"broker": b, "serve": newEngine(0)}
}

const napMutation = `import px
import pxtrace

program = """
tracepoint:syscalls:sys_enter_nanosleep { printf(\"time_:%%llu pid:%%u\", nsecs, pid); }
"""
pxtrace.UpsertTracepoint('nap_tracer', 'nap_table', program, pxtrace.kprobe(), '5m')
df = px.DataFrame(table='nap_table', start_time='-5m')
px.display(df[df.pid == %d], 'naps')
`

// mutationStates reads a response's mutation_info: its status code and
// the state of each tracepoint by name.
func mutationStates(r *dynamicpb.Message) (int64, map[string]string) {
	if !has(r, "mutation_info") {
		return -1, nil
	}
	mi := get(r, "mutation_info").Message()
	states := map[string]string{}
	l := get(mi, "states").List()
	for i := 0; i < l.Len(); i++ {
		s := l.Get(i).Message()
		ed := s.Descriptor().Fields().ByName("state").Enum()
		states[get(s, "name").String()] = string(ed.Values().ByNumber(get(s, "state").Enum()).Name())
		if id := get(s, "id").String(); len(id) != 36 {
			panic("mutation state id " + id + " is not a UUID")
		}
	}
	return get(mi, "status.code").Int(), states
}

func TestMutationDeploysTracepoints(t *testing.T) {
	pxtracetest.Require(t)
	// Answer at once: the first mutation sees its tracepoint pending.
	defer func(w time.Duration) { query.MutationWait = w }(query.MutationWait)
	query.MutationWait = 0
	for name, backend := range tracingBackends(t) {
		t.Run(name, func(t *testing.T) {
			c, _ := startPublic(t, backend)
			ctx := context.Background()
			pending := 0
			mutation := func(src string) []*dynamicpb.Message {
				t.Helper()
				// As Pixie's CLI: ask again while the probes are being
				// installed (mutation_info UNAVAILABLE).
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
					resps, err := c.execute(ctx, func(req *dynamicpb.Message) {
						setStr(req, "query_str", src)
						req.Set(req.Descriptor().Fields().ByName("mutation"), protoreflect.ValueOfBool(true))
					})
					if err != nil {
						t.Fatal(err)
					}
					if code, states := mutationStates(resps[0]); code == 14 {
						if len(states) != 1 || len(resps) != 1 || !strings.Contains(fmt.Sprint(states), ":PENDING_STATE") {
							t.Fatalf("pending with states %v, %d responses", states, len(resps))
						}
						pending++
						continue
					}
					return resps
				}
				t.Fatal("tracepoints still pending after 60 s")
				return nil
			}
			tables := checkStream(t, mutation(fmt.Sprintf(napMutation, 0)))
			if len(tables) != 1 || tables[0].name != "naps" || strings.Join(tables[0].cols, ",") != "time_,pid" {
				t.Fatalf("tables %+v", tables)
			}
			if pending == 0 {
				t.Fatal("the first mutation was never pending")
			}

			sleeper := pxtracetest.Sleeper(t, 500*time.Millisecond)
			_ = sleeper.Wait()
			agents := int64(1)
			if name == "broker" {
				agents = 2 // both agents run on this host and see the sleeper
			}
			var rows int64
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && rows < 10*agents; time.Sleep(200 * time.Millisecond) {
				tables = checkStream(t, mutation(fmt.Sprintf(napMutation, sleeper.Process.Pid)))
				rows = tables[0].rows
			}
			if rows < 10*agents {
				t.Fatalf("%d rows of the sleeper, want at least %d", rows, 10*agents)
			}

			// A query without the flag reads the status and the table.
			resps, err := c.execute(ctx, func(req *dynamicpb.Message) {
				setStr(req, "query_str", "import px\npx.display(px.GetTracepointStatus(), 'status')\n")
			})
			if err != nil {
				t.Fatal(err)
			}
			if tables := checkStream(t, resps); len(tables) != 1 || tables[0].rows != 1 {
				t.Fatalf("GetTracepointStatus: %+v", tables)
			}

			// The kernel's refusal of a kprobe: a compile error at the
			// upsert, and the tracepoint FAILED in mutation_info.
			resps = mutation(`import px
import pxtrace
pxtrace.UpsertTracepoint('drops', 'drop_table', 'kprobe:tcp_drop { printf("time_:%llu pid:%u", nsecs, pid); }', pxtrace.kprobe(), '1m')
px.display(px.DataFrame(table='drop_table'))
`)
			if len(resps) != 1 || get(resps[0], "status.code").Int() != 3 {
				t.Fatalf("responses %v", resps)
			}
			ce := get(resps[0], "status").Message()
			msg := get(ce, "message").String()
			if !strings.Contains(msg, "kprobe") {
				t.Fatalf("message %q does not give the kernel's refusal", msg)
			}
			details := get(ce, "error_details").List()
			if details.Len() != 1 || get(details.Get(0).Message(), "compiler_error.line").Uint() != 3 {
				t.Fatalf("error details %v", details)
			}
			if code, states := mutationStates(resps[0]); code != 3 || states["drops"] != "FAILED_STATE" {
				t.Fatalf("mutation_info %d %v", code, states)
			}
		})
	}
}
