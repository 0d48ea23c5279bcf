package format

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/types"
)

func TestCells(t *testing.T) {
	for _, tc := range []struct {
		v    any
		sem  types.SemanticType
		want string
	}{
		{int64(850), types.STDurationNS, "850ns"},
		{int64(12_345), types.STDurationNS, "12.3µs"},
		{int64(45_600_000), types.STDurationNS, "45.6ms"},
		{int64(1_234_000_000), types.STDurationNS, "1.23s"},
		{int64(125 * time.Second), types.STDurationNS, "2m5s"},
		{float64(2.5e6), types.STDurationNS, "2.5ms"},
		{int64(512), types.STBytes, "512 B"},
		{int64(1536), types.STBytes, "1.5 KiB"},
		{int64(3 << 20), types.STBytes, "3 MiB"},
		{0.0552, types.STPercent, "5.52%"},
		{0.25, types.STPercent, "25%"},
		{int64(42), types.STNone, "42"},
		{1.0 / 3, types.STNone, "0.3333"},
		{`{"p50":1500000,"p90":2e6,"p99":3.5e6}`, types.STDurationNSQuantiles, "p50=1.5ms p90=2ms p99=3.5ms"},
		{`{"label":"svc-a","script":"px/service","args":{}}`, types.STScriptReference, "svc-a"},
		{types.UPID(1, 42, 99), types.STUPID, "1:42:99"},
		{true, types.STNone, "true"},
	} {
		if got := Cell(tc.v, tc.sem); got != tc.want {
			t.Errorf("Cell(%v, %v) = %q, want %q", tc.v, tc.sem, got, tc.want)
		}
	}
}

func testTable() *Table {
	rel := types.Relation{
		{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS},
		{Name: "path", Type: types.String, Semantic: types.STNone},
		{Name: "latency", Type: types.Int64, Semantic: types.STDurationNS},
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, rel.ArrowSchema())
	b.Field(0).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{0, 1e9}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"/a", "/" + strings.Repeat("x", 100) + "\n<script>"}, nil)
	b.Field(2).(*array.Int64Builder).AppendValues([]int64{1500, 2_000_000}, nil)
	return &Table{Name: "t", Relation: rel, Records: []arrow.Record{b.NewRecord()}, Truncated: true}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	if err := Text(&buf, testTable(), Options{MaxWidth: 20}); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	for _, want := range []string{"t (2 rows, cut at the row cap)", "1.5µs", "2ms", "1970-01-01 00:00:01.000", "/xxxxxxxxxxxxxxxxxx…"} {
		if !strings.Contains(got, want) {
			t.Errorf("text output lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "\n") != 6 {
		t.Errorf("a newline in a value broke the table:\n%s", got)
	}
}

func TestJSONAndCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := JSON(&buf, testTable()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines", len(lines))
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &row); err != nil {
		t.Fatal(err)
	}
	if row["_table"] != "t" || row["latency"] != float64(2_000_000) || !strings.HasSuffix(row["path"].(string), "\n<script>") {
		t.Errorf("row = %v", row)
	}
	if !strings.HasPrefix(lines[0], `{"_table":"t","time_":"1970-01-01T00:00:00Z"`) {
		t.Errorf("columns out of order: %s", lines[0])
	}
	buf.Reset()
	if err := CSV(&buf, testTable(), true); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "# table: t\ntime_,path,latency\n1970-01-01T00:00:00Z,/a,1500\n") {
		t.Errorf("csv:\n%s", buf.String())
	}
}

// TestSpecialFloats: NaN, ±Inf and -0 go through every output format.
func TestSpecialFloats(t *testing.T) {
	rel := types.Relation{{Name: "x", Type: types.Float64, Semantic: types.STNone}}
	b := array.NewRecordBuilder(memory.DefaultAllocator, rel.ArrowSchema())
	negZero := math.Copysign(0, -1)
	vals := []float64{math.NaN(), math.Inf(1), math.Inf(-1), negZero, 1.5}
	b.Field(0).(*array.Float64Builder).AppendValues(vals, nil)
	tb := &Table{Name: "f", Relation: rel, Records: []arrow.Record{b.NewRecord()}}

	var js bytes.Buffer
	if err := JSON(&js, tb); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	var got []any
	for _, line := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatalf("JSON line %q: %v", line, err)
		}
		got = append(got, row["x"])
	}
	want := []any{"NaN", "Infinity", "-Infinity", float64(0), 1.5}
	if len(got) != len(want) {
		t.Fatalf("JSON rows %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("JSON row %d: %v, want %v", i, got[i], want[i])
		}
	}
	if !strings.Contains(js.String(), `"x":-0`) {
		t.Errorf("JSON lost the sign of -0:\n%s", js.String())
	}

	var csvOut bytes.Buffer
	if err := CSV(&csvOut, tb, false); err != nil {
		t.Fatalf("CSV: %v", err)
	}
	if want := "x\nNaN\n+Inf\n-Inf\n-0\n1.5\n"; csvOut.String() != want {
		t.Errorf("CSV = %q, want %q", csvOut.String(), want)
	}

	var text bytes.Buffer
	if err := Text(&text, tb, Options{}); err != nil {
		t.Fatalf("Text: %v", err)
	}
	for _, w := range []string{"NaN", "+Inf", "-Inf"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %s:\n%s", w, text.String())
		}
	}

	var ar bytes.Buffer
	if err := Arrow(&ar, tb); err != nil {
		t.Fatalf("Arrow: %v", err)
	}
	rd, err := ipc.NewReader(&ar)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Next() {
		t.Fatal("no Arrow batch")
	}
	col := rd.Record().Column(0).(*array.Float64)
	for i, v := range vals {
		g := col.Value(i)
		if !(g == v || math.IsNaN(g) && math.IsNaN(v)) || math.Signbit(g) != math.Signbit(v) {
			t.Errorf("Arrow row %d: %v, want %v", i, g, v)
		}
	}
}
