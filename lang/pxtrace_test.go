package lang

import (
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/pxtrace"
)

// A script in the shape of Pixie's bpftrace scripts: the program a
// module-level string, the table scanned right after the upsert.
const tcpDropsScript = `import pxtrace
import px

program = """
kprobe:tcp_drop
{
  printf(\"time_:%llu pid:%u pid_start_time:%llu src_ip:%s\", nsecs, pid, 0, "x");
}
"""

table_name = 'tcp_drop_table'
pxtrace.UpsertTracepoint('tcp_drop_tracer',
                         table_name,
                         program,
                         pxtrace.kprobe(),
                         "10m")

df = px.DataFrame(table=table_name, select=['time_', 'pid', 'src_ip', 'upid'])
df.pod = df.ctx['pod']
px.display(df)
`

func TestUpsertTracepointCompiles(t *testing.T) {
	var muts Mutations
	p, err := compile(t, tcpDropsScript, Options{Mutations: &muts})
	if err != nil {
		t.Fatal(err)
	}
	if len(muts.Tracepoints) != 1 {
		t.Fatalf("%d tracepoints", len(muts.Tracepoints))
	}
	tp := muts.Tracepoints[0]
	if tp.Delete || tp.Spec.Name != "tcp_drop_tracer" || tp.Spec.Table != "tcp_drop_table" || tp.Spec.TTL != 10*time.Minute ||
		len(tp.Spec.Programs) != 1 || !strings.Contains(tp.Spec.Programs[0].Text, "kprobe:tcp_drop") || tp.Pos.Line != 12 {
		t.Fatalf("tracepoint %+v", tp)
	}
	if got := relations(p); !strings.Contains(got, "time_") || !strings.Contains(got, "pod") {
		t.Fatalf("relations %s", got)
	}
}

func TestTracepointScripts(t *testing.T) {
	var muts Mutations
	// Deploying without output is a script of its own; TraceProgram
	// lists choose by kernel; DeleteTracepoint is recorded in order.
	src := `import pxtrace
pxtrace.UpsertTracepoint('naps', 'nap_table', [
    pxtrace.TraceProgram('tracepoint:syscalls:sys_enter_nanosleep { printf("time_:%llu pid:%u", nsecs, pid); }', min_kernel='5.10'),
    pxtrace.TraceProgram(program='tracepoint:syscalls:sys_enter_nanosleep { printf("time_:%llu pid:%u", nsecs, pid); }'),
], pxtrace.kprobe(), ttl='30s')
pxtrace.DeleteTracepoint('old')
`
	if _, err := compile(t, src, Options{Mutations: &muts}); err != nil {
		t.Fatal(err)
	}
	if len(muts.Tracepoints) != 2 || len(muts.Tracepoints[0].Spec.Programs) != 2 || muts.Tracepoints[0].Spec.Programs[0].MinKernel != "5.10" ||
		muts.Tracepoints[0].Spec.TTL != 30*time.Second || !muts.Tracepoints[1].Delete || muts.Tracepoints[1].Spec.Name != "old" {
		t.Fatalf("tracepoints %+v", muts.Tracepoints)
	}

	for _, tc := range []struct{ src, want string }{
		{"import pxtrace\npxtrace.UpsertTracepoint('a', 't', 'kprobe:x { printf(\"hi\"); }', pxtrace.kprobe(), '1m')\n", "test.pxl:2:25: pxtrace.UpsertTracepoint: the program prints no fields"},
		{"import pxtrace\npxtrace.UpsertTracepoint('a', 't', 5, pxtrace.kprobe(), '1m')\n", "probe_fn: want a bpftrace program"},
		{"import pxtrace\npxtrace.UpsertTracepoint('a', 't', 'kprobe:x { printf(\"a:%d\", 1); }', pxtrace.kprobe(), 'soon')\n", "ttl: invalid duration"},
		{"import pxtrace\nf = pxtrace.probe('main.f')\n", "pxtrace.probe (Pixie's tracing of Go functions by name) is not supported"},
		{"import pxtrace\npxtrace.Upsert('a')\n", `pxtrace has no function "Upsert"`},
		// The new table is among those an unknown one is compared with.
		{"import px\nimport pxtrace\npxtrace.UpsertTracepoint('a', 'nap_table', 'kprobe:x { printf(\"a:%d\", 1); }', pxtrace.kprobe(), '1m')\npx.display(px.DataFrame(table='nap_tabel'))\n", `did you mean "nap_table"`},
	} {
		_, err := compile(t, tc.src, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestTracepointErrorPosition(t *testing.T) {
	e := TracepointError(Tracepoint{Spec: pxtrace.Spec{Name: "x"}, Pos: plan.Pos{File: "s.pxl", Line: 3, Col: 5}}, " bpftrace: no kprobes\n")
	if e.Error() != "s.pxl:3:5: tracepoint x: bpftrace: no kprobes" {
		t.Fatalf("%q", e.Error())
	}
}
