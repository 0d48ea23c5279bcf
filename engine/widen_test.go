package engine

import (
	"math"
	"testing"
)

// TestIntArgumentsWidenToFloat runs calls whose INT64 arguments meet
// FLOAT64 parameters: the compiler resolves them by widening, and the
// results must be what the float arithmetic gives.
func TestIntArgumentsWidenToFloat(t *testing.T) {
	eng, rows := fixture(t, 500)
	got := run(t, eng, `import px
df = px.DataFrame(table='http_events', start_time='-10m')
df.a = px.select(df.resp_status >= 400, df.latency / 2, 0)
df.b = px.select(df.resp_status >= 400, 1, df.latency / 2)
df.c = px.pow(df.resp_status, 2)
df.d = px.log(10, df.latency + 1)  # base first, as Pixie
df.e = df.latency * 0.5 + 1
df.f = px.sqrt(df.resp_body_size)
px.display(df[['time_', 'resp_status', 'latency', 'resp_body_size', 'a', 'b', 'c', 'd', 'e', 'f']], 'w')
`)["w"]
	recs := records(got)
	if len(recs) != len(rows) {
		t.Fatalf("%d rows, want %d", len(recs), len(rows))
	}
	for _, m := range recs {
		lat := float64(m["latency"].(int64))
		st := m["resp_status"].(int64)
		wantA, wantB := 0.0, lat/2
		if st >= 400 {
			wantA, wantB = lat/2, 1
		}
		checks := map[string]float64{"a": wantA, "b": wantB, "c": float64(st * st), "d": math.Log10(lat + 1),
			"e": lat*0.5 + 1, "f": math.Sqrt(float64(m["resp_body_size"].(int64)))}
		for k, want := range checks {
			if v, ok := m[k].(float64); !ok || math.Abs(v-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Fatalf("%s = %v (%T), want %v; row %v", k, m[k], m[k], want, m)
			}
		}
	}
}
