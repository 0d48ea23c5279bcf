package dbtest

// FirstBytes are the first bytes one side of a connection sends, for
// each protocol the tracer infers, recorded from real clients and
// servers (curl, dig, psql, the mariadb client and server, redis-cli,
// gocql) and a TLS ClientHello. Each protocol's inference test checks that its
// rule accepts its own samples and none of the others.
var FirstBytes = map[string][]byte{
	"http-request":  []byte("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"),
	"http-response": []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"),
	// dig example.com A over UDP, and the same query over TCP (with its
	// 2-byte length).
	"dns-udp":          []byte("\x8a\x1e\x01 \x00\x01\x00\x00\x00\x00\x00\x01\aexample\x03com\x00\x00\x01\x00\x01\x00\x00)\x04\xd0\x00\x00\x00\x00\x00\f\x00\n\x00\b\xd9\x1b\x18\xd2\xd8\xa0\xee\x1b"),
	"dns-tcp":          []byte("\x00\x34\x8a\x1e\x01 \x00\x01\x00\x00\x00\x00\x00\x01\aexample\x03com\x00\x00\x01\x00\x01\x00\x00)\x04\xd0\x00\x00\x00\x00\x00\f\x00\n\x00\b\xd9\x1b\x18\xd2\xd8\xa0\xee\x1b"),
	"tls-client-hello": []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x9b\x1a\x8e\x7f\xa2\xc3\x11\x05\x8d\x2e\x7f\x4b\x3c\x99\x01\x22\xde\xad\xbe\xef\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\x20"),

	"pgsql-ssl-request": []byte("\x00\x00\x00\b\x04\xd2\x16/"),
	"pgsql-startup":     []byte("\x00\x00\x00:\x00\x03\x00\x00user\x00pxq\x00database\x00postgres\x00application_name\x00psql\x00\x00"),
	"pgsql-query":       []byte("Q\x00\x00\x00)select 1 as a, null as b; select 'x'\x00"),

	"mysql-handshake": []byte("d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x05\x00\x00\x00A?Y!9:V%\x00\xfe\xf7\b\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00TV4?#.\\fmog8\x00mysql_native_password\x00"),

	// gocql's first two requests (protocol v4).
	"cql-options": []byte("\x04\x00\x00\x01\x05\x00\x00\x00\x00"),
	"cql-startup": []byte("\x04\x00\x00@\x01\x00\x00\x007\x00\x03\x00\vCQL_VERSION\x00\x053.0.0\x00\vDRIVER_NAME\x00\x00\x00\x0eDRIVER_VERSION\x00\x00"),

	"redis-command": []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"),
	"redis-hello":   []byte("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"),
}
