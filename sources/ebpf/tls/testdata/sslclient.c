// sslclient makes HTTPS requests with OpenSSL, for the tests of package
// tls: built linked with libssl.so, and with OpenSSL linked statically.
//
//	sslclient PORT PATH COUNT INTERVAL_MS [wait]
//
// Each request is a GET of PATH with n=I appended, on a connection of its
// own (Connection: close). With "wait" it prints "ready" and reads a line
// before the first request. EX=1 in the environment makes it use
// SSL_write_ex and SSL_read_ex. For each request it prints its number and
// the bytes of the response.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: sslclient PORT PATH COUNT INTERVAL_MS [wait]\n");
		return 2;
	}
	int port = atoi(argv[1]), count = atoi(argv[3]), interval = atoi(argv[4]);
	const char *path = argv[2];
	const char *ex_env = getenv("EX");
	int ex = ex_env && strcmp(ex_env, "1") == 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (argc > 5 && strcmp(argv[5], "wait") == 0) {
		char line[64];
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof line, stdin))
			return 1;
	}
	for (int i = 0; i < count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
			perror("connect");
			return 1;
		}
		SSL *ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
		char req[1024];
		int n = snprintf(req, sizeof req,
				 "GET %s%sn=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
				 path, strchr(path, '?') ? "&" : "?", i);
		size_t done = 0;
		if (ex ? SSL_write_ex(ssl, req, n, &done) != 1 : SSL_write(ssl, req, n) != n) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
		long total = 0;
		char buf[4096];
		for (;;) {
			size_t got = 0;
			int r;
			if (ex) {
				r = SSL_read_ex(ssl, buf, sizeof buf, &got);
			} else {
				r = SSL_read(ssl, buf, sizeof buf);
				got = r > 0 ? r : 0;
			}
			if (r <= 0)
				break;
			total += got;
		}
		printf("%d %ld\n", i, total);
		fflush(stdout);
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
		if (i + 1 < count)
			usleep(interval * 1000);
	}
	SSL_CTX_free(ctx);
	return 0;
}
