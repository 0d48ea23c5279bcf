// Package realclient holds the MongoDB tests that run a real client, the
// official Go driver (go.mongodb.org/mongo-driver), against a real
// server, FerretDB over SQLite in a temporary folder, on 127.0.0.1: the
// parser over the bytes they exchange (through a recording proxy) and
// the socket tracer over their traffic, on the client's side and on both.
//
// It is a module of its own so that FerretDB and the driver stay out of
// pxq's go.mod; `make test` runs it. FerretDB runs embedded in this test
// binary started again as a child process (see TestMain), so that the
// server is a process of its own. With PXQ_RECORD=1 the proxied session
// is written to ../testdata for the mongodb package's unit and fuzz
// tests.
package realclient
