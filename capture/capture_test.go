package capture_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/demo"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// replay is an engine loaded from a capture, answering metadata from it.
type replay struct {
	c   *capture.Capture
	eng *engine.Engine
}

// opened returns a function that loads the capture Open or OpenFS
// returned into a new engine: opened(t)(capture.Open(dir)).
func opened(t *testing.T) func(*capture.Capture, error) replay {
	return func(c *capture.Capture, err error) replay {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Config{Meta: c.Metadata(nil)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Load(eng.Store()); err != nil {
			t.Fatal(err)
		}
		return replay{c, eng}
	}
}

// run runs a PxL script as of the capture's end and returns the rows of
// its tables, rendered ("table: a | b | …") and sorted.
func (r replay) run(t *testing.T, src string) []string {
	t.Helper()
	return runOn(t, r.eng, r.c.AsOf(), src)
}

// runOn runs a PxL script on eng as of now, as replay.run does.
func runOn(t *testing.T, eng *engine.Engine, now time.Time, src string) []string {
	t.Helper()
	s := &scripts.Script{Name: "test", Path: "test.pxl", PXL: []byte(src)}
	tables, err := eng.Collect(context.Background(), engine.Query{Script: s, Now: now})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	var rows []string
	for _, tb := range tables {
		for _, rec := range tb.Records {
			for i := 0; i < int(rec.NumRows()); i++ {
				var cells []string
				for c := range tb.Relation {
					cells = append(cells, fmt.Sprint(format.Value(rec.Column(c), i)))
				}
				rows = append(rows, tb.Name+": "+strings.Join(cells, " | "))
			}
		}
	}
	sort.Strings(rows)
	return rows
}

// column returns the rows of a table's column, all batches concatenated.
func column(t *testing.T, tb *table.Table, name string) arrow.Array {
	t.Helper()
	i := tb.Relation().Index(name)
	var chunks []arrow.Array
	all, err := tb.ReadAll() // a replayed table's rows are in its files
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range all {
		chunks = append(chunks, b.Record.Column(i))
	}
	if len(chunks) == 0 {
		return nil
	}
	a, err := array.Concatenate(chunks, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sameTables fails unless a and b hold the same non-empty tables with the
// same relations (semantic types included) and rows.
func sameTables(t *testing.T, a, b *table.Store) {
	t.Helper()
	n := 0
	for _, ta := range a.Tables() {
		if ta.Stats().Rows == 0 {
			continue
		}
		n++
		tb := b.Table(ta.Name())
		if tb == nil {
			t.Errorf("table %s was not replayed", ta.Name())
			continue
		}
		ra, rb := ta.Relation(), tb.Relation()
		if !slices.Equal(ra, rb) {
			t.Errorf("%s: relation %v, want %v", ta.Name(), rb, ra)
			continue
		}
		for _, col := range ra {
			if x, y := column(t, ta, col.Name), column(t, tb, col.Name); !array.Equal(x, y) {
				t.Errorf("%s.%s differs after the round trip", ta.Name(), col.Name)
			}
		}
	}
	if n == 0 {
		t.Fatal("nothing to compare")
	}
}

// cmdlineScript names each process of http_events and process_stats by
// ctx['cmdline'].
const cmdlineScript = `
import px
df = px.DataFrame(table='http_events', start_time='-30d')
df.cmd = df.ctx['cmdline']
df.host = df.ctx['hostname']
px.display(df.groupby(['upid', 'cmd', 'host']).agg(n=('latency', px.count)), 'http')
ps = px.DataFrame(table='process_stats', start_time='-30d')
ps.cmd = ps.ctx['cmdline']
px.display(ps.groupby(['upid', 'cmd']).agg(n=('rss_bytes', px.count)), 'proc')
`

// TestRoundTrip writes the demo capture out again and opens it: the same
// tables, relations (semantic types too) and rows, the same command lines
// through ctx['cmdline'], and a manifest that says what it holds.
func TestRoundTrip(t *testing.T) {
	src := opened(t)(capture.OpenFS(demo.Shipped(), "shipped"))
	dir := t.TempDir()
	m, err := capture.Write(dir, src.eng.Store(), src.eng.Metadata(), capture.Options{PXQVersion: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	dst := opened(t)(capture.Open(dir))
	if dst.c.Note != "" {
		t.Errorf("a current capture has a note: %s", dst.c.Note)
	}
	sameTables(t, src.eng.Store(), dst.eng.Store())

	got := dst.c.Manifest
	if got.Format != capture.FormatVersion || got.PXQVersion != "v-test" || got.Created.IsZero() || got.Metadata != m.Metadata {
		t.Errorf("manifest %+v", got)
	}
	var lo, hi int64
	for _, tb := range src.eng.Store().Tables() {
		for _, b := range tb.Snapshot(0, 0) {
			if lo == 0 || b.MinTime < lo {
				lo = b.MinTime
			}
			hi = max(hi, b.MaxTime)
		}
	}
	if got.StartNS != lo || got.EndNS != hi || !dst.c.AsOf().Equal(src.c.AsOf()) {
		t.Errorf("time range [%d, %d], want [%d, %d]", got.StartNS, got.EndNS, lo, hi)
	}
	for _, ti := range got.Tables {
		if rows := dst.eng.Store().Table(ti.Name).Stats().Rows; rows != ti.Rows || ti.StartNS == 0 || ti.EndNS < ti.StartNS {
			t.Errorf("manifest table %+v; %d rows loaded", ti, rows)
		}
	}

	want := src.run(t, cmdlineScript)
	have := dst.run(t, cmdlineScript)
	if !slices.Equal(want, have) {
		t.Errorf("ctx['cmdline'] after the round trip:\n%s\nwant:\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
	}
	named := 0
	for _, r := range have {
		if strings.Contains(r, "pxq demo-app") {
			named++
		}
	}
	if named == 0 {
		t.Errorf("no row names a demo process:\n%s", strings.Join(have, "\n"))
	}
}

// TestKeep writes only the chosen processes: no process_stats row and no
// process entry of another pid, every other table whole.
func TestKeep(t *testing.T) {
	src := opened(t)(capture.OpenFS(demo.Shipped(), "shipped"))
	dir := t.TempDir()
	if _, err := capture.Write(dir, src.eng.Store(), src.eng.Metadata(), capture.Options{Keep: capture.KeepPIDs()}); err != nil {
		t.Fatal(err)
	}
	dst := opened(t)(capture.Open(dir))
	for _, n := range []string{"http_events", "dns_events", "conn_stats"} {
		if a, b := src.eng.Store().Table(n).Stats().Rows, dst.eng.Store().Table(n).Stats().Rows; a != b || a == 0 {
			t.Errorf("%s: %d rows saved, %d loaded", n, a, b)
		}
	}
	if rows := dst.eng.Store().Table("process_stats").Stats().Rows; rows != 0 {
		t.Errorf("%d process_stats rows of no kept pid", rows)
	}
	if n := len(dst.c.Snapshot().Processes); n != 0 {
		t.Errorf("%d processes of no kept pid", n)
	}
}

// TestHostMode records a real process in host mode, lets it exit, and
// replays: the capture still names it, with its hostname and container,
// as the host provider did while it ran.
func TestHostMode(t *testing.T) {
	host, err := metadata.NewHost()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Meta: host})
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "300")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	pid := uint32(child.Process.Pid)
	for i := 0; i < 200; i++ { // right after fork, /proc shows the parent's command line
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.HasPrefix(string(b), "sleep") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sm, err := proc.NewSampler(proc.Config{Period: time.Hour}, eng.Store())
	if err != nil {
		t.Fatal(err)
	}
	sm.Sample(time.Now())
	sm.Close()
	var upid types.UInt128Value
	for _, u := range upidsOf(t, eng.Store().Table("process_stats")) {
		if u.PID() == pid {
			upid = u
		}
	}
	if upid.PID() != pid {
		t.Fatalf("no process_stats row of the child %d", pid)
	}
	live := *host.Process(upid)
	if live.Cmdline != "sleep 300" {
		t.Fatalf("live cmdline %q", live.Cmdline)
	}
	now := time.Now().Add(time.Second)
	script := fmt.Sprintf(hostScript, pid)
	liveRows := runOn(t, eng, now, script)
	if want := fmt.Sprintf("output: sleep 300 | %s | %s | ", host.Hostname(), live.ContainerID); len(liveRows) != 1 || !strings.HasPrefix(liveRows[0], want) {
		t.Fatalf("live ctx values %q, want one row starting %q", liveRows, want)
	}

	dir := t.TempDir()
	m, err := capture.Write(dir, eng.Store(), host, capture.Options{Keep: capture.KeepPIDs(pid)})
	if err != nil {
		t.Fatal(err)
	}
	child.Process.Kill()
	child.Wait()
	if fresh, _ := metadata.NewHost(); fresh.Process(upid) != nil {
		t.Fatal("the child still resolves from /proc after it exited")
	}
	if m.Metadata != metadata.ModeHost || !slices.Equal(m.Hosts, []string{host.Hostname()}) {
		t.Errorf("manifest: metadata %q, hosts %v", m.Metadata, m.Hosts)
	}
	r := opened(t)(capture.Open(dir))
	meta := r.eng.Metadata()
	if p := meta.Process(upid); p == nil || *p != live {
		t.Errorf("replayed process %+v, want %+v", p, live)
	}
	if meta.Hostname() != host.Hostname() {
		t.Errorf("replayed hostname %q, want %q", meta.Hostname(), host.Hostname())
	}
	if rows := runOn(t, r.eng, now, script); !slices.Equal(rows, liveRows) {
		t.Errorf("replayed ctx values %q, live %q", rows, liveRows)
	}
}

// hostScript asks the ctx keys a host answers, of the process whose pid
// it is given.
var hostScript = `
import px
df = px.DataFrame(table='process_stats', start_time='-1h')
df = df[px.upid_to_pid(df.upid) == %d]
` + plantest.CtxColumns("cmdline", "hostname", "container_id", "pod", "service", "namespace", "node") + `
px.display(df[['cmdline', 'hostname', 'container_id', 'pod', 'service', 'namespace', 'node']])
`

func upidsOf(t *testing.T, tb *table.Table) []types.UInt128Value {
	t.Helper()
	col, ok := column(t, tb, "upid").(*array.FixedSizeBinary)
	if !ok {
		t.Fatalf("%s has no upid column", tb.Name())
	}
	var out []types.UInt128Value
	for i := 0; i < col.Len(); i++ {
		out = append(out, types.GetUInt128(col.Value(i)))
	}
	return out
}

// writeOld writes src's tables as older pxq versions did: one file per
// table (ext), and, with procs, processes.json as [{upid, cmdline}].
func writeOld(t *testing.T, dir, ext string, src replay, procs bool) {
	t.Helper()
	var list []map[string]string
	for _, tb := range src.eng.Store().Tables() {
		var recs []arrow.Record
		all, err := tb.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range all {
			recs = append(recs, b.Record)
		}
		if len(recs) == 0 {
			continue
		}
		if err := table.WriteFile(filepath.Join(dir, tb.Name()+ext), tb.Relation(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if !procs {
		return
	}
	for _, p := range src.c.Snapshot().Processes {
		list = append(list, map[string]string{"upid": p.UPID.String(), "cmdline": p.Cmdline})
	}
	b, _ := json.Marshal(list)
	if err := os.WriteFile(filepath.Join(dir, capture.ProcessesFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOlderCaptures opens the two formats of earlier pxq versions: .arrow
// files alone (pxq run --save-capture), and Parquet with processes.json
// (pxq capture, pxq demo --save-capture). Both load, with a note saying
// what they lack; the second still names its processes.
func TestOlderCaptures(t *testing.T) {
	src := opened(t)(capture.OpenFS(demo.Shipped(), "shipped"))
	want := src.run(t, cmdlineScript)
	for _, tc := range []struct {
		ext   string
		procs bool
		note  string
	}{
		{".arrow", false, "no process or metadata side files"},
		{".parquet", true, "no Kubernetes metadata"},
	} {
		dir := t.TempDir()
		writeOld(t, dir, tc.ext, src, tc.procs)
		old := opened(t)(capture.Open(dir))
		if !strings.Contains(old.c.Note, "older pxq") || !strings.Contains(old.c.Note, tc.note) || !strings.Contains(old.c.Note, "--save-capture") {
			t.Errorf("%s: note %q", tc.ext, old.c.Note)
		}
		sameTables(t, src.eng.Store(), old.eng.Store())
		if !old.c.AsOf().Equal(src.c.AsOf()) {
			t.Errorf("%s: as of %v, want %v", tc.ext, old.c.AsOf(), src.c.AsOf())
		}
		for _, ti := range old.c.Manifest.Tables {
			if ti.Rows != src.eng.Store().Table(ti.Name).Stats().Rows {
				t.Errorf("%s: table %+v", tc.ext, ti)
			}
		}
		got := old.run(t, cmdlineScript)
		if tc.procs {
			// The hostname was not recorded then.
			for i := range want {
				want[i] = strings.Replace(want[i], " | "+src.eng.Metadata().Hostname()+" | ", " |  | ", 1)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: ctx['cmdline']:\n%s\nwant:\n%s", tc.ext, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		} else if slices.Equal(got, want) {
			t.Errorf("%s: an .arrow capture named its processes", tc.ext)
		}
	}
}

// TestRejects: a truncated table, a newer format and a folder that is not
// a capture are errors that say so.
func TestRejects(t *testing.T) {
	src := opened(t)(capture.OpenFS(demo.Shipped(), "shipped"))
	dir := t.TempDir()
	if _, err := capture.Write(dir, src.eng.Store(), src.eng.Metadata(), capture.Options{}); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) {
		b, err := os.ReadFile(filepath.Join(dir, capture.ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ = json.Marshal(m)
		if err := os.WriteFile(filepath.Join(dir, capture.ManifestFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit(func(m map[string]any) { m["tables"].([]any)[0].(map[string]any)["rows"] = 1 })
	c, err := capture.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Load(table.NewStore(0)); err == nil || !strings.Contains(err.Error(), "the manifest says 1") {
		t.Errorf("truncated table: %v", err)
	}
	edit(func(m map[string]any) { m["format"] = capture.FormatVersion + 1 })
	if _, err := capture.Open(dir); err == nil || !strings.Contains(err.Error(), "use a newer pxq") {
		t.Errorf("newer format: %v", err)
	}
	os.Remove(filepath.Join(dir, capture.ManifestFile))
	if _, err := capture.Open(dir); err == nil || !strings.Contains(err.Error(), "not completely written") {
		t.Errorf("no manifest beside metadata.json: %v", err)
	}
	if _, err := capture.Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a capture") {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := capture.Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing folder opened")
	}
}
