// Package oteltest tests pxq's OpenTelemetry export (export/otel)
// against a real OpenTelemetry Collector: otelcol/ is a Collector of the
// OTLP receiver and the file exporter, from the Collector's own modules
// (pinned in go.mod), which the tests build and run as a process of its
// own. pxq sends it metrics and spans over OTLP/gRPC and OTLP/HTTP, and
// the tests read back what the Collector wrote and compare it with the
// rows. It is a module of its own so that the Collector's dependencies
// stay out of pxq's.
package oteltest
