// burn spends its CPU in two functions, burn_a twice as long as burn_b,
// until it is killed. Built with -fno-omit-frame-pointer, so the kernel
// can walk its stacks.
#include <stdint.h>

volatile uint64_t sink;

__attribute__((noinline)) void burn_a(long n)
{
	uint64_t x = sink;
	for (long i = 0; i < n; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	sink = x;
}

__attribute__((noinline)) void burn_b(long n)
{
	uint64_t x = sink;
	for (long i = 0; i < n; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	sink = x;
}

int main(void)
{
	const long n = 3000000;
	for (;;) {
		burn_a(2 * n);
		burn_b(n);
	}
}
