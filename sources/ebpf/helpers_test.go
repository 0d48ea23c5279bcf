package ebpf

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// newTestTracer starts a tracer that traces this test process (and only it,
// unless cfg says otherwise). Without root or BPF it skips, saying why; with
// CI=true it fails instead, so that CI cannot pass having traced nothing.
func newTestTracer(t *testing.T, cfg Config) (*Tracer, *table.Store) {
	t.Helper()
	skip := func(reason string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and the tracer cannot run: %s", reason)
		}
		t.Skip(reason)
	}
	if os.Geteuid() != 0 {
		skip("needs root to load BPF programs and attach tracepoints (run the test as root)")
	}
	cfg.TraceSelf = true
	if cfg.OnlyPIDs == nil {
		cfg.OnlyPIDs = []uint32{uint32(os.Getpid())}
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	store := table.NewStore(0)
	tr, err := New(cfg, store)
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") || strings.Contains(err.Error(), "tracefs") {
			skip("cannot load the tracer here: " + err.Error())
		}
		t.Fatalf("New: %v", err)
	}
	tr.Start(t.Context())
	t.Cleanup(func() { tr.Close() })
	return tr, store
}

// rows returns a table's rows as maps from column name to Go value
// (int64, string, bool, types.UInt128Value; times as int64 ns).
func rows(store *table.Store, name string) []map[string]any {
	tb := store.Table(name)
	if tb == nil {
		return nil
	}
	var out []map[string]any
	for _, b := range tb.Snapshot(0, 0) {
		rec := b.Record
		for i := 0; i < int(rec.NumRows()); i++ {
			r := map[string]any{}
			for j, f := range rec.Schema().Fields() {
				r[f.Name] = value(rec.Column(j), i)
			}
			out = append(out, r)
		}
	}
	return out
}

func value(a arrow.Array, i int) any {
	switch c := a.(type) {
	case *array.Int64:
		return c.Value(i)
	case *array.String:
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	case *array.Timestamp:
		return int64(c.Value(i))
	case *array.FixedSizeBinary:
		return types.GetUInt128(c.Value(i))
	case *array.Float64:
		return c.Value(i)
	}
	return nil
}

// waitRows polls until keep selects at least n rows of the table, or the
// timeout passes; it returns the selected rows.
func waitRows(t *testing.T, store *table.Store, name string, n int, timeout time.Duration, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got []map[string]any
		for _, r := range rows(store, name) {
			if keep(r) {
				got = append(got, r)
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}
