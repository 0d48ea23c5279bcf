// burn spends its CPU in two functions, burnA twice as long as burnB,
// until it is killed: the profiler's tests find them at the top of its
// stacks in that proportion.
package main

var sink uint64

//go:noinline
func burnA(n int) {
	x := sink
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink = x
}

//go:noinline
func burnB(n int) {
	x := sink
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink = x
}

func main() {
	const n = 3_000_000
	for {
		burnA(2 * n)
		burnB(n)
	}
}
