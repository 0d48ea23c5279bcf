package engine

import (
	"math"
	"testing"
)

// TestPixieLanguageGaps runs the forms Pixie's scripts use that Starlark
// alone rejects: subscripts with a trailing comma (one line and several),
// px module attributes set by the script (also inside a function), and a
// merge on no keys (a cross join that attaches a one-row aggregate to
// every group), against results computed here.
func TestPixieLanguageGaps(t *testing.T) {
	eng, rows := fixture(t, 5000)
	got := run(t, eng, `import px
px.Pod = str
def shim():
    px.Service = str
    return px.Service
shim()
df = px.DataFrame(table='http_events', start_time='-10m')
df = df['req_path', 'latency',]
df = df[
    'req_path',
    'latency',
]
total = df.agg(total=('latency', px.count))
per = df.groupby('req_path').agg(n=('latency', px.count))
j = per.merge(total, how='inner', left_on=[], right_on=[], suffixes=['', '_t'])
j.share = j.n / j.total
px.display(j, 'shares')
`)["shares"]
	counts := map[string]int64{}
	for _, r := range rows {
		counts[r.path]++
	}
	recs := records(got)
	if len(recs) != len(counts) {
		t.Fatalf("%d groups, want %d", len(recs), len(counts))
	}
	for _, m := range recs {
		p := m["req_path"].(string)
		if m["n"] != counts[p] || m["total"] != int64(len(rows)) {
			t.Errorf("%s: n=%v total=%v, want %d and %d", p, m["n"], m["total"], counts[p], len(rows))
		}
		if want := float64(counts[p]) / float64(len(rows)); math.Abs(m["share"].(float64)-want) > 1e-12 {
			t.Errorf("%s: share %v, want %v", p, m["share"], want)
		}
	}

	// A cross join of two multi-row frames has every pair; an empty side
	// gives no rows.
	out := run(t, eng, `import px
df = px.DataFrame(table='http_events', start_time='-10m')
a = df.groupby('req_method').agg(n=('latency', px.count))
b = df.groupby('req_path').agg(m=('latency', px.count))
px.display(a.merge(b, how='inner', left_on=[], right_on=[]), 'pairs')
none = df[df.latency < 0].groupby('req_path').agg(m=('latency', px.count))
px.display(a.merge(none, how='inner', left_on=[], right_on=[]), 'empty')
`)
	methods := map[string]bool{}
	for _, r := range rows {
		methods[r.method] = true
	}
	if n, want := len(records(out["pairs"])), len(methods)*len(counts); n != want {
		t.Errorf("cross join: %d rows, want %d", n, want)
	}
	if n := len(records(out["empty"])); n != 0 {
		t.Errorf("cross join with an empty side: %d rows", n)
	}
}
