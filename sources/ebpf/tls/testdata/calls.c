// calls calls an empty function named SSL_write N times and prints the
// nanoseconds a call took, for BenchmarkProbedCall: what a uprobe costs a
// process, apart from what its program does.
//
//	calls N
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

__attribute__((noinline)) int SSL_write(void *s, const void *b, int n)
{
	__asm__ volatile("" ::: "memory");
	return n;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100000;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		SSL_write(0, 0, i);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	return 0;
}
