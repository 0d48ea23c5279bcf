package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/pxtrace/pxtracetest"
)

// napScript deploys a tracepoint on nanosleep and reads its table in
// the same script, keeping the rows of one pid.
func napScript(pid int64) string {
	return fmt.Sprintf(`import px
import pxtrace

program = """
tracepoint:syscalls:sys_enter_nanosleep
{
  printf(\"time_:%%llu pid:%%u comm:%%s\", nsecs, pid, comm);
}
"""

pxtrace.UpsertTracepoint('nap_tracer', 'nap_table', program, pxtrace.kprobe(), '5m')
df = px.DataFrame(table='nap_table', start_time='-5m')
df = df[df.pid == %d]
px.display(df.groupby('pid').agg(n=('time_', px.count)), 'naps')
px.display(px.GetTracepointStatus(), 'status')
`, pid)
}

func collect(eng *Engine, src string) (map[string][]map[string]any, error) {
	s := &scripts.Script{Name: "test", Path: "test.pxl", PXL: []byte(src)}
	tables, err := eng.Collect(context.Background(), Query{Script: s})
	if err != nil {
		return nil, err
	}
	out := map[string][]map[string]any{}
	for _, tb := range tables {
		out[tb.Name] = records(tb)
	}
	return out, nil
}

func TestPxtraceScriptFillsItsTable(t *testing.T) {
	pxtracetest.Require(t)
	eng, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Tracepoints().Close()
	// The first run deploys the tracepoint; the table exists for the
	// script's own DataFrame.
	out, err := collect(eng, napScript(0))
	if err != nil {
		t.Fatal(err)
	}
	if st := out["status"]; len(st) != 1 || st[0]["name"] != "nap_tracer" || st[0]["state"] != "RUNNING_STATE" || st[0]["output_tables"] != `["nap_table"]` {
		t.Fatalf("status %v", st)
	}
	pid := eng.Tracepoints().Status()[0].PID
	sleeper := pxtracetest.Sleeper(t, 500*time.Millisecond)
	_ = sleeper.Wait()
	var naps []map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(naps) == 0; time.Sleep(200 * time.Millisecond) {
		if out, err = collect(eng, napScript(pxtracetest.PID(sleeper))); err != nil {
			t.Fatal(err)
		}
		naps = out["naps"]
	}
	if len(naps) != 1 || naps[0]["n"].(int64) < 10 {
		t.Fatalf("naps of the sleeper (pid %d): %v", sleeper.Process.Pid, naps)
	}
	// The second script shared the first one's bpftrace.
	if got := eng.Tracepoints().Status(); len(got) != 1 || got[0].PID != pid {
		t.Fatalf("tracepoints %+v, want the one of pid %d", got, pid)
	}
}

func TestPxtraceKprobeRefused(t *testing.T) {
	pxtracetest.Require(t)
	eng, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Tracepoints().Close()
	src := `import px
import pxtrace
pxtrace.UpsertTracepoint('drops', 'drop_table', 'kprobe:tcp_drop { printf("time_:%llu pid:%u", nsecs, pid); }', pxtrace.kprobe(), '1m')
px.display(px.DataFrame(table='drop_table'))
`
	start := time.Now()
	_, err = collect(eng, src)
	var le *lang.Error
	if !errors.As(err, &le) || le.Line != 3 || !strings.Contains(le.Msg, "kprobe") || !strings.Contains(le.Msg, "tracepoint drops") {
		t.Fatalf("error %v, want the kernel's refusal at line 3", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the refusal took %v", d)
	}
	out, err := collect(eng, "import px\npx.display(px.GetTracepointStatus())\n")
	if err != nil {
		t.Fatal(err)
	}
	if st := out["output"]; len(st) != 1 || st[0]["state"] != "FAILED_STATE" || !strings.Contains(st[0]["status"].(string), "kprobe") {
		t.Fatalf("status %v", st)
	}
}

func TestPxtraceDeployAndDeleteWithoutOutput(t *testing.T) {
	pxtracetest.Require(t)
	eng, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Tracepoints().Close()
	out, err := collect(eng, `import pxtrace
pxtrace.UpsertTracepoint('naps', 'nap_table', 'tracepoint:syscalls:sys_enter_nanosleep { printf("time_:%llu pid:%u", nsecs, pid); }', pxtrace.kprobe(), '1m')
`)
	if err != nil || len(out) != 0 {
		t.Fatalf("tables %v, err %v", out, err)
	}
	st := eng.Tracepoints().Status()
	if len(st) != 1 || st[0].State.String() != "RUNNING_STATE" {
		t.Fatalf("status %+v", st)
	}
	if _, err := collect(eng, "import pxtrace\npxtrace.DeleteTracepoint('naps')\n"); err != nil {
		t.Fatal(err)
	}
	if st := eng.Tracepoints().Status(); len(st) != 0 {
		t.Fatalf("status after delete %+v", st)
	}
	if eng.Store().Table("nap_table") == nil {
		t.Fatal("the table went with its tracepoint")
	}
}
