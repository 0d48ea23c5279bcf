package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// row is one generated http_events row, as the expectations see it.
type row struct {
	t       int64
	pid     uint32
	method  string
	path    string
	status  int64
	latency int64
	size    int64
	role    int64
}

var now = time.Unix(1_750_000_000, 0)

// fixture fills an engine with n generated http_events rows spread over
// the last 10 minutes. The pid of some rows is this test process's, so
// that host metadata resolves it.
func fixture(t *testing.T, n int) (*Engine, []row) {
	t.Helper()
	host, err := metadata.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(Config{Meta: host, Limits: query.Limits{MaxRowsPerTable: -1}})
	if err != nil {
		t.Fatal(err)
	}
	self := uint32(os.Getpid())
	selfStart, err := proc.StartNS(int(self))
	if err != nil {
		t.Fatal(err)
	}
	w := table.NewWriter(eng.Store().Table("http_events"))
	r := rand.New(rand.NewSource(1))
	methods := []string{"GET", "POST", "PUT"}
	var rows []row
	for i := 0; i < n; i++ {
		x := row{
			t:       now.Add(-10*time.Minute).UnixNano() + int64(r.Intn(600_000))*int64(time.Millisecond),
			pid:     []uint32{self, 101, 202}[r.Intn(3)],
			method:  methods[r.Intn(3)],
			path:    fmt.Sprintf("/api/v%d/items/%d", r.Intn(2), r.Intn(10)),
			status:  []int64{200, 200, 200, 201, 404, 500}[r.Intn(6)],
			latency: int64(r.ExpFloat64() * 5e6),
			size:    int64(r.Intn(5000)),
			role:    int64(1 + r.Intn(2)),
		}
		rows = append(rows, x)
		start := uint64(0)
		if x.pid == self {
			start = uint64(selfStart)
		}
		err := w.AppendRow(x.t, types.UPID(0, x.pid, start), "10.0.0.1", int64(80), "10.0.0.2", int64(5000), x.role, false,
			int64(1), int64(1), int64(0), `{"Host":"svc"}`, x.method, x.path, "", int64(0), `{}`, x.status, "OK", "body", x.size, x.latency)
		if err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			w.Flush()
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return eng, rows
}

func run(t *testing.T, eng *Engine, src string) map[string]*format.Table {
	t.Helper()
	s := &scripts.Script{Name: "test", Path: "test.pxl", PXL: []byte(src)}
	tables, err := eng.Collect(context.Background(), Query{Script: s, Now: now})
	if err != nil {
		t.Fatalf("%v\nscript:\n%s", err, src)
	}
	out := map[string]*format.Table{}
	for _, tb := range tables {
		out[tb.Name] = tb
	}
	return out
}

// records flattens a table into rows of Go values keyed by column.
func records(tb *format.Table) []map[string]any {
	var out []map[string]any
	for _, rec := range tb.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			m := map[string]any{}
			for c, col := range tb.Relation {
				m[col.Name] = format.Value(rec.Column(c), i)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestFilterGroupByCount(t *testing.T) {
	eng, rows := fixture(t, 20000)
	got := run(t, eng, `import px
df = px.DataFrame(table='http_events', start_time='-10m')
df = df[df.resp_status >= 400 and px.contains(df.req_path, '/v1/')]
df = df.groupby(['req_path', 'req_method']).agg(n=('latency', px.count), total=('resp_body_size', px.sum),
    mx=('latency', px.max), mn=('latency', px.min), avg=('latency', px.mean))
px.display(df, 'errors')
`)["errors"]
	type key struct{ path, method string }
	type agg struct {
		n, total, mx, mn, sum int64
	}
	want := map[key]*agg{}
	for _, r := range rows {
		if r.status < 400 || !strings.Contains(r.path, "/v1/") {
			continue
		}
		k := key{r.path, r.method}
		a := want[k]
		if a == nil {
			a = &agg{mn: math.MaxInt64, mx: math.MinInt64}
			want[k] = a
		}
		a.n++
		a.total += r.size
		a.sum += r.latency
		a.mx = max(a.mx, r.latency)
		a.mn = min(a.mn, r.latency)
	}
	recs := records(got)
	if len(recs) != len(want) {
		t.Fatalf("%d groups, want %d", len(recs), len(want))
	}
	for _, m := range recs {
		a := want[key{m["req_path"].(string), m["req_method"].(string)}]
		if a == nil {
			t.Fatalf("unexpected group %v", m)
		}
		if m["n"] != a.n || m["total"] != a.total || m["mx"] != a.mx || m["mn"] != a.mn {
			t.Errorf("group %v: got n=%v total=%v max=%v min=%v, want %+v", m["req_path"], m["n"], m["total"], m["mx"], m["mn"], a)
		}
		if avg := m["avg"].(float64); math.Abs(avg-float64(a.sum)/float64(a.n)) > 1e-6*avg {
			t.Errorf("mean %v, want %v", avg, float64(a.sum)/float64(a.n))
		}
	}
}

func TestTimeWindowBinAndErrorRate(t *testing.T) {
	eng, rows := fixture(t, 10000)
	got := run(t, eng, `import px
df = px.DataFrame(table='http_events', start_time='-5m', end_time='-1m')
df.failure = df.resp_status >= 400
df.window = px.bin(df.time_, px.seconds(60))
df = df.groupby('window').agg(requests=('latency', px.count), error_rate=('failure', px.mean))
px.display(df, 'ts')
`)["ts"]
	lo, hi := now.Add(-5*time.Minute).UnixNano(), now.Add(-time.Minute).UnixNano()
	type acc struct{ n, fail int64 }
	want := map[int64]*acc{}
	for _, r := range rows {
		if r.t < lo || r.t >= hi {
			continue
		}
		w := r.t - r.t%int64(time.Minute)
		if want[w] == nil {
			want[w] = &acc{}
		}
		want[w].n++
		if r.status >= 400 {
			want[w].fail++
		}
	}
	recs := records(got)
	if len(recs) != len(want) {
		t.Fatalf("%d windows, want %d", len(recs), len(want))
	}
	for _, m := range recs {
		w := m["window"].(time.Time).UnixNano()
		a := want[w]
		if a == nil || m["requests"] != a.n {
			t.Fatalf("window %v: %v requests, want %+v", w, m["requests"], a)
		}
		if er := m["error_rate"].(float64); math.Abs(er-float64(a.fail)/float64(a.n)) > 1e-9 {
			t.Errorf("window %v error rate %v, want %v", w, er, float64(a.fail)/float64(a.n))
		}
	}
}

func TestMergeAppendHead(t *testing.T) {
	eng, rows := fixture(t, 5000)
	got := run(t, eng, `import px
df = px.DataFrame(table='http_events', start_time='-10m')
counts = df.groupby('req_path').agg(n=('latency', px.count))
slow = df[df.latency > 10000000].groupby('req_path').agg(slow=('latency', px.count))
j = counts.merge(slow, how='left', left_on='req_path', right_on='req_path', suffixes=['', '_s'])
px.display(j, 'joined')
both = df[df.req_method == 'GET'].append(df[df.req_method != 'GET'])
px.display(both.agg(n=('latency', px.count)), 'all')
px.display(df.head(7), 'seven')
`)
	want := map[string][2]int64{}
	for _, r := range rows {
		c := want[r.path]
		c[0]++
		if r.latency > 10_000_000 {
			c[1]++
		}
		want[r.path] = c
	}
	for _, m := range records(got["joined"]) {
		c := want[m["req_path"].(string)]
		if m["n"] != c[0] || m["slow"] != c[1] {
			t.Errorf("%v: n=%v slow=%v, want %v", m["req_path"], m["n"], m["slow"], c)
		}
		if c[1] > 0 && m["req_path_s"] != m["req_path"] {
			t.Errorf("right key %v for %v", m["req_path_s"], m["req_path"])
		}
	}
	if n := records(got["all"])[0]["n"]; n != int64(len(rows)) {
		t.Errorf("append: %v rows, want %d", n, len(rows))
	}
	if n := got["seven"].Rows(); n != 7 {
		t.Errorf("head(7): %d rows", n)
	}
}

func TestQuantilesWithinSketchError(t *testing.T) {
	eng, rows := fixture(t, 20000)
	got := run(t, eng, `import px
df = px.DataFrame(table='http_events', start_time='-10m')
df = df.agg(q=('latency', px.quantiles))
df.p50 = px.pluck_float64(df.q, 'p50')
df.p99 = px.pluck_float64(df.q, 'p99')
px.display(df, 'q')
`)["q"]
	var lat []float64
	for _, r := range rows {
		lat = append(lat, float64(r.latency))
	}
	sort.Float64s(lat)
	m := records(got)[0]
	var q map[string]float64
	if err := json.Unmarshal([]byte(m["q"].(string)), &q); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		key  string
		rank float64
	}{{"p50", 0.5}, {"p99", 0.99}, {"p10", 0.1}} {
		// Compare ranks, not values: the sketch promises rank error.
		rank := float64(sort.SearchFloat64s(lat, q[p.key])) / float64(len(lat))
		if math.Abs(rank-p.rank) > 0.01 {
			t.Errorf("%s = %v has rank %.4f, want %.2f ± 0.01", p.key, q[p.key], rank, p.rank)
		}
	}
	if m["p50"] != q["p50"] {
		t.Errorf("pluck_float64 p50 = %v, JSON says %v", m["p50"], q["p50"])
	}
}

func TestHostMetadataAndStrings(t *testing.T) {
	eng, rows := fixture(t, 3000)
	got := run(t, eng, `import px
df = px.DataFrame(table='http_events', start_time='-10m')
df.pid = px.upid_to_pid(df.upid)
df.cmd = df.ctx['cmdline']
df.pod = df.ctx['pod']
df.label = px.select(df.resp_status < 400, 'ok:', 'bad:') + df.req_method
df = df.groupby(['pid', 'cmd', 'pod', 'label']).agg(n=('latency', px.count))
px.display(df, 'by_pid')
`)["by_pid"]
	self := int64(os.Getpid())
	want := map[string]int64{}
	for _, r := range rows {
		label := "bad:" + r.method
		if r.status < 400 {
			label = "ok:" + r.method
		}
		want[fmt.Sprintf("%d %s", r.pid, label)]++
	}
	exe, _ := os.ReadFile("/proc/self/cmdline")
	firstArg := strings.SplitN(string(exe), "\x00", 2)[0]
	// This process belongs to a host entity; the others do not run.
	podOf := func(pid int64) string {
		if pid != self {
			return ""
		}
		start, _ := proc.StartNS(int(pid))
		e, _ := metadata.EntityOf(eng.Metadata().Process(types.UPID(0, uint32(pid), start)))
		return e.QualifiedName()
	}
	for _, m := range records(got) {
		k := fmt.Sprintf("%d %s", m["pid"], m["label"])
		if m["n"] != want[k] {
			t.Errorf("%s: %v rows, want %d", k, m["n"], want[k])
		}
		if wantPod := podOf(m["pid"].(int64)); m["pod"] != wantPod {
			t.Errorf("host mode pod = %q, want %q", m["pod"], wantPod)
		}
		if m["pid"] == self && !strings.Contains(m["cmd"].(string), firstArg) {
			t.Errorf("cmdline of this process = %q, want it to contain %q", m["cmd"], firstArg)
		}
		if m["pid"] != self && m["cmd"] != "" {
			t.Errorf("pid %v (no such process start) has cmdline %q", m["pid"], m["cmd"])
		}
	}
}

func TestLibraryScriptsRunOnEngine(t *testing.T) {
	eng, rows := fixture(t, 4000)
	lib := scripts.NewLibrary()
	for _, name := range []string{"px/http_data", "px/http_request_stats"} {
		s, err := lib.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := eng.Collect(context.Background(), Query{Script: s, Now: now, Args: map[string]string{"start_time": "-10m"}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(tables) == 0 || tables[0].Rows() == 0 {
			t.Fatalf("%s: no rows", name)
		}
	}
	var servers int64
	for _, r := range rows {
		if r.role == 2 {
			servers++
		}
	}
	s, _ := lib.Get("px/http_request_stats")
	tables, _ := eng.Collect(context.Background(), Query{Script: s, Now: now, Args: map[string]string{"start_time": "-10m"}})
	var total int64
	for _, m := range records(tables[0]) {
		total += m["requests"].(int64)
	}
	if total != servers {
		t.Errorf("http_request_stats counts %d requests, the data has %d server-side rows", total, servers)
	}
}
