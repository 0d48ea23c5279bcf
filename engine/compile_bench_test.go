package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/scripts"
)

// BenchmarkCompile100Lines measures parse + compile + optimize of a
// 100-line script (the goal is under 5 ms).
func BenchmarkCompile100Lines(b *testing.B) {
	src := plantest.Script(8, false) // 98 lines
	if n := strings.Count(src, "\n"); n < 95 || n > 105 {
		b.Fatalf("script has %d lines", n)
	}
	eng, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	s := &scripts.Script{Name: "bench", Path: "bench.pxl", PXL: []byte(src)}
	cat := eng.Catalog()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(Query{Script: s, Now: time.Now()}, cat); err != nil {
			b.Fatal(err)
		}
	}
}
