// Package realclient holds the AMQP tests that run a real client,
// rabbitmq/amqp091-go, against a real broker, Debian's rabbitmq-server,
// on 127.0.0.1: the parser over the bytes they exchange (through a
// recording proxy) and the socket tracer over their traffic.
//
// It is a module of its own so that the client library stays out of
// pxq's go.mod; `make test` runs it. With PXQ_RECORD=1 the proxied
// sessions are written to ../testdata, with the rows the client's
// operations should make, for the amqp package's unit and fuzz tests.
package realclient
