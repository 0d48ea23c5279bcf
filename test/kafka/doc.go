// Package kafkatest tests the Kafka parser (sources/ebpf/protocols/kafka)
// on real traffic: a Kafka broker (franz-go's kfake, a Kafka-protocol
// broker in Go) on 127.0.0.1 and real clients (franz-go, IBM/sarama,
// segmentio/kafka-go, and Debian's kcat over librdkafka) producing and
// consuming in consumer groups. It is a module of its own so that these
// clients stay out of pxq's dependencies.
//
// The parse tests run the parser over each connection's bytes as the
// broker read and wrote them, at every protocol version a client
// release uses; with PXQ_RECORD=1 they write those bytes to the parser
// package's testdata, which its unit tests replay. The trace tests run
// the socket tracer (as root) over the same cycles. BenchmarkProduce
// measures the tracer's cost to a producer at its maximum rate
// (docs/performance.md).
package kafkatest
