package pxtrace_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/internal/testenv"
	"github.com/pxq-dev/pxq/sources/pxtrace"
	"github.com/pxq-dev/pxq/sources/pxtrace/pxtracetest"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

func TestParseProgram(t *testing.T) {
	p, err := pxtrace.ParseProgram(`
tracepoint:syscalls:sys_enter_openat {
  printf("time_:%llu pid:%u pid_start_time:%llu fd:%d comm:%s file:%s\n", nsecs, pid,
    ((struct task_struct*)curtask)->group_leader->start_time / 10000000, -1, comm, str(args->filename));
}
tracepoint:syscalls:sys_enter_open {
  printf("time_:%llu pid:%u pid_start_time:%llu fd:%d comm:%s file:%s", nsecs, pid, 0, 0, comm, "x");
}`)
	if err != nil {
		t.Fatal(err)
	}
	want := "time_:TIME64NS pid:INT64 pid_start_time:INT64 fd:INT64 comm:STRING file:STRING upid:UINT128"
	var got []string
	for _, c := range p.Columns {
		got = append(got, c.Name+":"+c.Type.String())
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("columns %s, want %s", strings.Join(got, " "), want)
	}
	row, ok := p.Row("time_:123 pid:42 pid_start_time:7 fd:-3 comm:my app file:/etc/a b")
	if !ok {
		t.Fatal("line not read")
	}
	if row[0] != int64(123) || row[1] != int64(42) || row[2] != int64(7) || row[3] != int64(-3) ||
		row[4] != "my app" || row[5] != "/etc/a b" || row[6] != types.UPID(0, 42, 7*10_000_000) {
		t.Fatalf("row %v", row)
	}
	if _, ok := p.Row("Attaching 2 probes..."); ok {
		t.Fatal("a line that no printf made was read")
	}

	// No time_: the rows get a time_ column of their own.
	p, err = pxtrace.ParseProgram(`profile:hz:99 { printf("cpu:%d hex:%x", cpu, 255); }`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Columns[0].Name != "time_" || len(p.Columns) != 3 {
		t.Fatalf("columns %v", p.Columns)
	}
	if row, ok := p.Row("cpu:1 hex:ff"); !ok || row[1] != int64(1) || row[2] != int64(255) {
		t.Fatalf("row %v %v", row, ok)
	}

	for _, bad := range []string{
		`kprobe:x { printf("hello\n"); }`,
		`kprobe:x { printf("a:%d", 1); } kprobe:y { printf("b:%d", 1); }`,
		`kprobe:x { printf("a:%d a:%d", 1, 2); }`,
	} {
		if _, err := pxtrace.ParseProgram(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

const nanosleepProgram = `tracepoint:syscalls:sys_enter_nanosleep { printf("time_:%llu pid:%u tid:%u comm:%s", nsecs, pid, tid, comm); }`

func newManager(t *testing.T) (*pxtrace.Manager, *table.Store) {
	t.Helper()
	st := table.NewStore(0)
	m := pxtrace.NewManager(pxtrace.Config{Store: st, ASID: 7})
	t.Cleanup(func() { m.Close() })
	return m, st
}

func wait(t *testing.T, m *pxtrace.Manager, name string) pxtrace.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := m.Wait(ctx, []string{name})[0]
	if st.State == pxtrace.Pending {
		t.Fatalf("tracepoint %s still pending after 60 s", name)
	}
	return st
}

// pids returns the pid column of the table's rows and their time range.
func pids(t *testing.T, tb *table.Table) (map[int64]int, int64, int64) {
	t.Helper()
	out := map[int64]int{}
	var lo, hi int64
	pi := tb.Relation().Index("pid")
	for _, b := range tb.Snapshot(0, 0) {
		col := b.Record.Column(pi).(*array.Int64)
		for i := 0; i < col.Len(); i++ {
			out[col.Value(i)]++
		}
		if lo == 0 || b.MinTime < lo {
			lo = b.MinTime
		}
		hi = max(hi, b.MaxTime)
	}
	return out, lo, hi
}

func TestNanosleepTracepoint(t *testing.T) {
	pxtracetest.Require(t)
	m, st := newManager(t)
	s, err := m.Upsert(pxtrace.Spec{Name: "naps", Table: "nap_table", Programs: []pxtrace.Choice{{Text: nanosleepProgram}}, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != pxtrace.ID("naps") || s.Table != "nap_table" {
		t.Fatalf("status %+v", s)
	}
	if s := wait(t, m, "naps"); s.State != pxtrace.Running {
		t.Fatalf("state %v: %s", s.State, s.Err)
	}
	before := time.Now().UnixNano()
	sleeper := pxtracetest.Sleeper(t, 500*time.Millisecond)
	_ = sleeper.Wait()
	tb := st.Table("nap_table")
	if tb == nil {
		t.Fatal("no table nap_table")
	}
	var got map[int64]int
	var lo, hi int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got, lo, hi = pids(t, tb); got[pxtracetest.PID(sleeper)] > 0 {
			break
		}
	}
	// The sleeper calls nanosleep every 10 ms for 500 ms.
	if n := got[pxtracetest.PID(sleeper)]; n < 10 {
		t.Fatalf("%d rows of the sleeper (pid %d); pids seen: %v", n, sleeper.Process.Pid, got)
	}
	after := time.Now().UnixNano()
	// time_ is bpftrace's nsecs turned into wall-clock time.
	if hi < before-int64(time.Second) || lo > after {
		t.Fatalf("time_ in [%d, %d], outside the test's [%d, %d]", lo, hi, before, after)
	}
}

func TestKprobeFails(t *testing.T) {
	pxtracetest.Require(t)
	m, _ := newManager(t)
	_, err := m.Upsert(pxtrace.Spec{Name: "drops", Table: "drop_table",
		Programs: []pxtrace.Choice{{Text: `kprobe:tcp_drop { printf("time_:%llu pid:%u", nsecs, pid); }`}}})
	if err != nil {
		t.Fatal(err)
	}
	s := wait(t, m, "drops")
	if s.State != pxtrace.Failed || !strings.Contains(s.Err, "kprobe") {
		t.Fatalf("state %v, error %q; want FAILED naming the kprobe", s.State, s.Err)
	}
	t.Logf("error: %s", s.Err)
	if got := m.Status(); len(got) != 1 || got[0].State != pxtrace.Failed {
		t.Fatalf("status %+v", got)
	}
}

func TestTTLStopsBpftrace(t *testing.T) {
	pxtracetest.Require(t)
	m, _ := newManager(t)
	if _, err := m.Upsert(pxtrace.Spec{Name: "short", Table: "short_table", Programs: []pxtrace.Choice{{Text: nanosleepProgram}}, TTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	s := wait(t, m, "short")
	if s.State != pxtrace.Running || s.PID == 0 {
		t.Fatalf("status %+v", s)
	}
	pid := s.PID
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("bpftrace (pid %d) does not run: %v", pid, err)
	}
	deadline := time.Now().Add(s.Expires.Sub(time.Now()) + 10*time.Second)
	for m.Status()[0].State != pxtrace.Terminated {
		if time.Now().After(deadline) {
			t.Fatalf("still %v 10 s after its TTL", m.Status()[0].State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Fatalf("bpftrace (pid %d) still exists after the TTL: %v", pid, err)
	}
}

func TestOneNameSharesOneProgram(t *testing.T) {
	pxtracetest.Require(t)
	m, _ := newManager(t)
	spec := pxtrace.Spec{Name: "shared", Table: "shared_table", Programs: []pxtrace.Choice{{Text: nanosleepProgram}}, TTL: 30 * time.Second}
	if _, err := m.Upsert(spec); err != nil {
		t.Fatal(err)
	}
	first := wait(t, m, "shared")
	spec.TTL = time.Minute
	second, err := m.Upsert(spec)
	if err != nil {
		t.Fatal(err)
	}
	if first.State != pxtrace.Running || second.PID != first.PID || !second.Expires.After(first.Expires) {
		t.Fatalf("first %+v, second %+v: want one running process whose TTL the second upsert extends", first, second)
	}
	if n := len(m.Status()); n != 1 {
		t.Fatalf("%d tracepoints", n)
	}
	// Another program under the same name replaces the first.
	spec.Programs[0].Text = strings.Replace(nanosleepProgram, "tid:%u", "tid:%d", 1)
	if _, err := m.Upsert(spec); err != nil {
		t.Fatal(err)
	}
	third := wait(t, m, "shared")
	if third.State != pxtrace.Running || third.PID == first.PID {
		t.Fatalf("third %+v: want a new process", third)
	}
	if s, ok := m.Delete("shared"); !ok || s.State != pxtrace.Terminated {
		t.Fatalf("delete: %+v %v", s, ok)
	}
	if len(m.Status()) != 0 {
		t.Fatalf("status after delete: %+v", m.Status())
	}
}

func TestMissingBpftrace(t *testing.T) {
	st := table.NewStore(0)
	m := pxtrace.NewManager(pxtrace.Config{Store: st, Bpftrace: "/nonexistent/bpftrace"})
	defer m.Close()
	s, err := m.Upsert(pxtrace.Spec{Name: "x", Table: "x_table", Programs: []pxtrace.Choice{{Text: nanosleepProgram}}})
	if err != nil {
		t.Fatal(err)
	}
	if s.State != pxtrace.Failed || !strings.Contains(s.Err, "package bpftrace") {
		t.Fatalf("status %+v", s)
	}
}

// TestProbeKinds: the probe types this kernel attaches besides syscall
// tracepoints: perf events (profile), timers (interval) and uprobes.
func TestProbeKinds(t *testing.T) {
	pxtracetest.Require(t)
	libc := ""
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/usr/lib64/libc.so.6", "/lib64/libc.so.6"} {
		if _, err := os.Stat(p); err == nil {
			libc = p
			break
		}
	}
	if libc == "" {
		testenv.SkipOrFail(t, "no libc.so.6 found for the uprobe")
	}
	m, st := newManager(t)
	for _, tc := range []struct {
		name, program string
		// check says whether the rows so far are what the probe makes.
		check func(tb *table.Table, sleeper int64) bool
	}{
		{"profile", `profile:hz:99 { printf("time_:%llu cpu:%d pid:%u", nsecs, cpu, pid); }`,
			func(tb *table.Table, _ int64) bool { return tb.Stats().Rows >= 5 }},
		{"interval", `interval:ms:100 { printf("tick:%d", 1); }`,
			func(tb *table.Table, _ int64) bool {
				// No time_ printed: the rows get the time they were read.
				bs := tb.Snapshot(0, 0)
				return tb.Stats().Rows >= 3 && time.Since(time.Unix(0, bs[len(bs)-1].MaxTime)) < 10*time.Second
			}},
		{"uprobe", `uprobe:` + libc + `:clock_nanosleep /comm == "sleep"/ { printf("time_:%llu pid:%u", nsecs, pid); }`,
			func(tb *table.Table, sleeper int64) bool {
				got, _, _ := pids(t, tb)
				return got[sleeper] > 0
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := m.Upsert(pxtrace.Spec{Name: tc.name, Table: tc.name + "_table", Programs: []pxtrace.Choice{{Text: tc.program}}, TTL: time.Minute}); err != nil {
				t.Fatal(err)
			}
			if s := wait(t, m, tc.name); s.State != pxtrace.Running {
				t.Fatalf("state %v: %s", s.State, s.Err)
			}
			sleep := exec.Command("sleep", "0.2")
			if err := sleep.Run(); err != nil {
				t.Fatal(err)
			}
			tb := st.Table(tc.name + "_table")
			for deadline := time.Now().Add(5 * time.Second); !tc.check(tb, int64(sleep.Process.Pid)); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d rows, not what the probe makes", tb.Stats().Rows)
				}
			}
			m.Delete(tc.name)
		})
	}
}
