package funcs

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// sortFloats sorts as slices.Sort does: random values of several scales
// and signs, duplicates, zeros of both signs, infinities, the sizes
// around its limits, and a NaN (left to slices.Sort).
func TestSortFloats(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for trial := 0; trial < 300; trial++ {
		n := []int{0, 1, 2, 7, 64, 200, 511, 512, 513}[trial%9]
		a := make([]float64, n)
		for i := range a {
			switch r.Intn(8) {
			case 0:
				a[i] = float64(r.Intn(5))
			case 1:
				a[i] = math.Copysign(0, -1)
			case 2:
				a[i] = math.Inf(1 - 2*r.Intn(2))
			case 3:
				a[i] = -math.Exp(13 + r.NormFloat64())
			default:
				a[i] = math.Exp(13+r.NormFloat64()) * math.Pow(10, float64(r.Intn(7)-3))
			}
		}
		if trial%10 == 0 && n > 0 {
			a[r.Intn(n)] = math.NaN()
		}
		want := slices.Clone(a)
		slices.Sort(want)
		sortFloats(a)
		for i := range a {
			same := a[i] == want[i] || (math.IsNaN(a[i]) && math.IsNaN(want[i]))
			if !same {
				t.Fatalf("trial %d (n %d): [%d] = %v, want %v", trial, n, i, a[i], want[i])
			}
		}
	}
}

func BenchmarkSortFloats(b *testing.B) {
	r := rand.New(rand.NewSource(5))
	src := make([]float64, tdBuffer)
	for i := range src {
		src[i] = float64(int64(math.Exp(13 + r.NormFloat64())))
	}
	a := make([]float64, len(src))
	for _, s := range []struct {
		name string
		sort func([]float64)
	}{{"bits", sortFloats}, {"slices", slices.Sort[[]float64]}} {
		b.Run(s.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				copy(a, src)
				s.sort(a)
			}
		})
	}
}
