package lang

import (
	"testing"

	"github.com/pxq-dev/pxq/internal/plantest"
)

// BenchmarkParseCompile measures lang's part of compiling a 100-line
// script: parse, rewrite, evaluate, build the plan.
func BenchmarkParseCompile(b *testing.B) {
	// The script of engine's BenchmarkCompile100Lines, with some
	// arithmetic on values: 106 lines.
	src := []byte(plantest.Script(8, true))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := Parse("bench.pxl", src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Compile(Options{Catalog: testCatalog{}, Now: testNow}); err != nil {
			b.Fatal(err)
		}
	}
}
