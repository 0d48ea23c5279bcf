// probed calls one of its functions N times and prints the time per call.
// The functions differ only in their first instruction, the one a uprobe
// at the function's address replaces: x86-64 Linux emulates some (push,
// nop, a 5-byte nop it can even rewrite into a call) and single-steps the
// others out of line. run.sh probes each with bpftrace and compares.
//
//	cc -O1 -o probed probed.c && ./probed f_sub 20000
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F(name, first)                                                          \
	__attribute__((noinline, naked)) int name(void *s, const void *b, int n) { \
		__asm__ volatile(first "\n\tsub $0x18,%rsp\n\tmov %edx,%eax\n"           \
				       "\tadd $0x18,%rsp\n\tret\n");                     \
	}

F(f_sub, "sub $0x8,%rsp\n\tadd $0x8,%rsp") // as OpenSSL 3's SSL_write begins
F(f_push, "push %rbp\n\tpop %rbp")
F(f_nop, "nop")
F(f_nop5, ".byte 0x0f,0x1f,0x44,0x00,0x00")
F(f_endbr, "endbr64")
F(f_test, "test %edx,%edx\n\tjs 1f\n1:")

static const struct {
	const char *name;
	int (*f)(void *, const void *, int);
} funcs[] = {{"f_sub", f_sub}, {"f_push", f_push}, {"f_nop", f_nop},
	     {"f_nop5", f_nop5}, {"f_endbr", f_endbr}, {"f_test", f_test}};

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: probed FUNCTION N\n");
		return 2;
	}
	int n = atoi(argv[2]);
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		if (strcmp(argv[1], funcs[i].name))
			continue;
		struct timespec t0, t1;
		volatile int sum = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int j = 0; j < n; j++)
			sum += funcs[i].f(0, 0, j);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
		printf("%s %.0f ns/call\n", funcs[i].name, ns / n);
		return 0;
	}
	fprintf(stderr, "no function %s\n", argv[1]);
	return 2;
}
