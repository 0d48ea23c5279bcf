package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/sources/pxtrace/pxtracetest"
)

// tracingCluster is n agents, each with its own tracepoints (stopped
// when the test ends), and a broker over them.
func tracingCluster(t *testing.T, n int) ([]*engine.Engine, *query.Runner) {
	t.Helper()
	var engs []*engine.Engine
	var addrs []string
	for i := 0; i < n; i++ {
		asid := uint32(i + 1)
		eng := brokertest.NewEngine(t, brokertest.Meta{}, asid)
		t.Cleanup(func() { eng.Tracepoints().Close() })
		engs = append(engs, eng)
		addrs = append(addrs, brokertest.StartAgent(t, eng, asid).Addr)
	}
	b, err := broker.New(broker.Config{Agents: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return engs, &query.Runner{Backend: b}
}

// The program prints pid and pid_start_time, so its table has a upid
// that carries each agent's asid.
const napsPerAgent = `
import px
import pxtrace
program = """
tracepoint:syscalls:sys_enter_nanosleep {
  printf("time_:%%llu pid:%%u pid_start_time:%%llu", nsecs, pid, ((struct task_struct*)curtask)->group_leader->start_time / 10000000);
}
"""
pxtrace.UpsertTracepoint('naps', 'nap_table', program, pxtrace.kprobe(), '5m')
df = px.DataFrame(table='nap_table', start_time='-5m')
df = df[df.pid == %d]
df.asid = px.upid_to_asid(df.upid)
px.display(df.groupby('asid').agg(n=('time_', px.count)), 'naps')
px.display(px.GetTracepointStatus(), 'status')
`

func TestTracepointOnEveryAgent(t *testing.T) {
	pxtracetest.Require(t)
	engs, r := tracingCluster(t, 2)
	ctx := context.Background()
	tables, _, err := r.Collect(ctx, engine.Query{Script: pxl(fmt.Sprintf(napsPerAgent, 0))})
	if err != nil {
		t.Fatal(err)
	}
	for _, eng := range engs {
		if st := eng.Tracepoints().Status(); len(st) != 1 || st[0].State.String() != "RUNNING_STATE" {
			t.Fatalf("agent %d: tracepoints %+v", eng.ASID(), st)
		}
	}
	if st := byName(tables, "status"); st == nil || st.Rows() != 1 {
		t.Fatalf("GetTracepointStatus: %v", st)
	}

	sleeper := pxtracetest.Sleeper(t, 500*time.Millisecond)
	_ = sleeper.Wait()
	counts := map[int64]int64{}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && (counts[1] < 10 || counts[2] < 10); time.Sleep(200 * time.Millisecond) {
		tables, _, err = r.Collect(ctx, engine.Query{Script: pxl(fmt.Sprintf(napsPerAgent, sleeper.Process.Pid))})
		if err != nil {
			t.Fatal(err)
		}
		counts = map[int64]int64{}
		for _, rec := range byName(tables, "naps").Records {
			asid, n := rec.Column(0).(*array.Int64), rec.Column(1).(*array.Int64)
			for i := 0; i < asid.Len(); i++ {
				counts[asid.Value(i)] += n.Value(i)
			}
		}
	}
	// Both agents run on this host: each traced the sleeper.
	if len(counts) != 2 || counts[1] < 10 || counts[2] < 10 {
		t.Fatalf("rows of the sleeper per agent: %v", counts)
	}
	// A later script without the upsert reads the table like any other.
	tables, _, err = r.Collect(ctx, engine.Query{Script: pxl(fmt.Sprintf(
		"import px\ndf = px.DataFrame(table='nap_table', start_time='-5m')\npx.display(df[df.pid == %d].groupby('pid').agg(n=('time_', px.count)))", sleeper.Process.Pid))})
	if err != nil {
		t.Fatal(err)
	}
	if out := byName(tables, "output"); out == nil || out.Rows() != 1 || out.Records[0].Column(1).(*array.Int64).Value(0) < counts[1]+counts[2] {
		t.Fatalf("later script: %v", out)
	}
	// One bpftrace per agent, kept by the second script.
	for _, eng := range engs {
		if st := eng.Tracepoints().Status(); len(st) != 1 || st[0].PID == 0 {
			t.Fatalf("agent %d: tracepoints %+v", eng.ASID(), st)
		}
	}
}

func TestTracepointFailureNamesTheAgents(t *testing.T) {
	pxtracetest.Require(t)
	_, r := tracingCluster(t, 2)
	_, _, err := r.Collect(context.Background(), engine.Query{Script: pxl(`
import px
import pxtrace
pxtrace.UpsertTracepoint('drops', 'drop_table', 'kretprobe:tcp_drop { printf("time_:%llu pid:%u", nsecs, pid); }', pxtrace.kprobe(), '1m')
px.display(px.DataFrame(table='drop_table'))
`)})
	var le *lang.Error
	if !errors.As(err, &le) || le.Line != 3 || strings.Count(le.Msg, "agent ") != 2 || !strings.Contains(le.Msg, "kprobe") {
		t.Fatalf("error %v, want the refusal on both agents at line 3", err)
	}
}

func byName(ts []*format.Table, name string) *format.Table {
	for _, t := range ts {
		if t.Name == name {
			return t
		}
	}
	return nil
}
