// fakessl is an HTTP client whose "TLS library" is its own: functions
// named SSL_write, SSL_write_ex and SSL_read that move the bytes in the
// clear, so that a test can check what the probes make of calls a real
// library makes too. SSL_write calls SSL_write_ex (a call inside a call:
// one write, not two); SSL_read calls SSL_do_handshake (a handshake inside
// a read must not end the read), reads the socket into a buffer of its own
// and hands it out in small pieces, most without a syscall (the socket is
// found through the SSL pointer); the last read returns -1.
//
//	fakessl PORT COUNT
//
// It prints "ready" and waits for a line on stdin, then makes COUNT
// keep-alive GETs of /hello?n=I, the last with Connection: close, and
// prints the response bytes it read.
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ssl {
	int fd;
	char buf[8192];
	int len, off;
};

__attribute__((noinline)) int SSL_write_ex(struct ssl *s, const void *b, size_t n, size_t *written)
{
	ssize_t r = write(s->fd, b, n);
	if (r < 0)
		return 0;
	*written = r;
	return 1;
}

__attribute__((noinline)) int SSL_write(struct ssl *s, const void *b, int n)
{
	size_t w = 0;
	if (!SSL_write_ex(s, b, n, &w))
		return -1;
	return (int)w;
}

__attribute__((noinline)) int SSL_do_handshake(struct ssl *s)
{
	__asm__ volatile("" ::: "memory");
	return 1;
}

__attribute__((noinline)) int SSL_read(struct ssl *s, void *b, int n)
{
	if (SSL_do_handshake(s) != 1)
		return -1;
	if (s->off == s->len) {
		ssize_t r = read(s->fd, s->buf, sizeof s->buf);
		if (r <= 0)
			return -1;
		s->len = r;
		s->off = 0;
	}
	int k = s->len - s->off < n ? s->len - s->off : n;
	memcpy(b, s->buf + s->off, k);
	s->off += k;
	return k;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fakessl PORT COUNT\n");
		return 2;
	}
	int port = atoi(argv[1]), count = atoi(argv[2]);
	char line[64];
	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 1;
	static struct ssl s;
	s.fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(s.fd, (struct sockaddr *)&sa, sizeof sa)) {
		perror("connect");
		return 1;
	}
	long total = 0;
	for (int i = 0; i < count; i++) {
		char req[256], resp[16384];
		int n = snprintf(req, sizeof req, "GET /hello?n=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", i,
				 i == count - 1 ? "Connection: close\r\n" : "");
		if (SSL_write(&s, req, n) != n)
			return 1;
		// Read the response 16 bytes at a time, up to its body's end.
		int got = 0, need = -1;
		while (need < 0 || got < need) {
			int r = SSL_read(&s, resp + got, 16);
			if (r <= 0)
				return 1;
			got += r;
			resp[got] = 0;
			char *end = strstr(resp, "\r\n\r\n");
			char *cl = strstr(resp, "Content-Length: ");
			if (need < 0 && end && cl)
				need = (int)(end + 4 - resp) + atoi(cl + 16);
		}
		total += got;
	}
	char c;
	if (SSL_read(&s, &c, 1) != -1) // the server closed: -1
		return 1;
	printf("%ld\n", total);
	return 0;
}
