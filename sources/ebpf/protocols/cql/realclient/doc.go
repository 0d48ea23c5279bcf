// Package realclient holds the CQL tests that run a real client, the
// gocql driver, against a responder of the native protocol written for
// them (no Cassandra server can be installed here): the parser over the
// bytes they exchange (through a recording proxy) and the socket tracer
// over their traffic, the responder in a process of its own.
//
// It is a module of its own so that the driver stays out of pxq's
// go.mod; `make test` runs it. With PXQ_RECORD=1 the proxied session is
// written to ../testdata for the cql package's unit and fuzz tests.
package realclient
