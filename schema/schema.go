// Package schema holds the relations of the tables that pxq's sources
// produce. Column names, types and semantic types follow Pixie's data
// sources so that scripts written for Pixie find what they expect.
package schema

import (
	"sort"

	t "github.com/pxq-dev/pxq/types"
)

// Table describes one table a source fills.
type Table struct {
	Name     string
	Desc     string
	Relation t.Relation
}

func col(name string, typ t.DataType, sem t.SemanticType, desc string) t.Column {
	return t.Column{Name: name, Type: typ, Semantic: sem, Desc: desc}
}

// Columns shared by the socket tracer's protocol tables.
func connColumns() t.Relation {
	return t.Relation{
		col("time_", t.Time64NS, t.STTimeNS, "Time the response (or the event) was seen"),
		col("upid", t.UInt128, t.STUPID, "Unique process id of the traced process"),
		col("remote_addr", t.String, t.STIPAddress, "IP address of the peer"),
		col("remote_port", t.Int64, t.STPort, "Port of the peer"),
		col("local_addr", t.String, t.STIPAddress, "IP address of the traced process's side"),
		col("local_port", t.Int64, t.STPort, "Port of the traced process's side"),
		col("trace_role", t.Int64, t.STNone, "1 when the traced process is the client, 2 when it is the server"),
		col("encrypted", t.Boolean, t.STNone, "Whether the traffic was TLS (captured as plaintext)"),
	}
}

// HTTPEvents is one row per HTTP/1.x request and its response.
var HTTPEvents = Table{
	Name: "http_events",
	Desc: "HTTP requests and their responses, traced from socket syscalls",
	Relation: append(connColumns(),
		col("major_version", t.Int64, t.STNone, "HTTP major version"),
		col("minor_version", t.Int64, t.STNone, "HTTP minor version"),
		col("content_type", t.Int64, t.STNone, "0 unknown, 1 JSON, 2 gRPC"),
		col("req_headers", t.String, t.STNone, "Request headers as a JSON object"),
		col("req_method", t.String, t.STHTTPReqMethod, "Request method"),
		col("req_path", t.String, t.STNone, "Request path with query"),
		col("req_body", t.String, t.STNone, "Request body, truncated"),
		col("req_body_size", t.Int64, t.STBytes, "Request body size before truncation"),
		col("resp_headers", t.String, t.STNone, "Response headers as a JSON object"),
		col("resp_status", t.Int64, t.STHTTPRespStatus, "Response status code"),
		col("resp_message", t.String, t.STHTTPRespMessage, "Response reason phrase"),
		col("resp_body", t.String, t.STNone, "Response body, truncated"),
		col("resp_body_size", t.Int64, t.STBytes, "Response body size before truncation"),
		col("latency", t.Int64, t.STDurationNS, "Time from the request's first byte to the response's last"),
	),
}

// DNSEvents is one row per DNS query and its answer.
var DNSEvents = Table{
	Name: "dns_events",
	Desc: "DNS queries and their answers, traced from socket syscalls",
	Relation: append(connColumns(),
		col("req_header", t.String, t.STNone, "Query header as JSON"),
		col("req_body", t.String, t.STNone, "Query questions as JSON"),
		col("resp_header", t.String, t.STNone, "Answer header as JSON"),
		col("resp_body", t.String, t.STNone, "Answer records as JSON"),
		col("latency", t.Int64, t.STDurationNS, "Time from query to answer"),
	),
}

// ConnStats holds cumulative per-connection-group counters, one row per
// group per sampling period.
var ConnStats = Table{
	Name: "conn_stats",
	Desc: "Connection counts and bytes per process and peer, cumulative since tracing began",
	Relation: t.Relation{
		col("time_", t.Time64NS, t.STTimeNS, "Sample time"),
		col("upid", t.UInt128, t.STUPID, "Unique process id"),
		col("remote_addr", t.String, t.STIPAddress, "IP address of the peer"),
		col("remote_port", t.Int64, t.STPort, "Port of the peer"),
		col("trace_role", t.Int64, t.STNone, "1 client, 2 server"),
		col("addr_family", t.Int64, t.STNone, "Address family (2 AF_INET, 10 AF_INET6)"),
		col("protocol", t.Int64, t.STNone, "Inferred protocol (0 unknown, 1 HTTP, 6 DNS, …)"),
		col("ssl", t.Boolean, t.STNone, "Whether the connection is TLS"),
		col("conn_open", t.Int64, t.STNone, "Connections opened"),
		col("conn_close", t.Int64, t.STNone, "Connections closed"),
		col("conn_active", t.Int64, t.STNone, "Connections open now"),
		col("bytes_sent", t.Int64, t.STBytes, "Bytes sent"),
		col("bytes_recv", t.Int64, t.STBytes, "Bytes received"),
	},
}

// ProcessStats holds /proc counters per process, sampled.
var ProcessStats = Table{
	Name: "process_stats",
	Desc: "CPU, memory and I/O of every process, sampled from /proc",
	Relation: t.Relation{
		col("time_", t.Time64NS, t.STTimeNS, "Sample time"),
		col("upid", t.UInt128, t.STUPID, "Unique process id"),
		col("major_faults", t.Int64, t.STNone, "Major page faults"),
		col("minor_faults", t.Int64, t.STNone, "Minor page faults"),
		col("cpu_utime_ns", t.Int64, t.STDurationNS, "User CPU time"),
		col("cpu_ktime_ns", t.Int64, t.STDurationNS, "Kernel CPU time"),
		col("num_threads", t.Int64, t.STNone, "Threads"),
		col("vsize_bytes", t.Int64, t.STBytes, "Virtual memory size"),
		col("rss_bytes", t.Int64, t.STBytes, "Resident set size"),
		col("rchar_bytes", t.Int64, t.STBytes, "Bytes read by read-like syscalls"),
		col("wchar_bytes", t.Int64, t.STBytes, "Bytes written by write-like syscalls"),
		col("read_bytes", t.Int64, t.STBytes, "Bytes read from storage"),
		col("write_bytes", t.Int64, t.STBytes, "Bytes written to storage"),
	},
}

// NetworkStats holds interface counters per network namespace (per pod).
var NetworkStats = Table{
	Name: "network_stats",
	Desc: "Network interface counters per network namespace (per pod on Kubernetes)",
	Relation: t.Relation{
		col("time_", t.Time64NS, t.STTimeNS, "Sample time"),
		col("pod_id", t.String, t.STNone, "Pod UID (empty for the host's namespace)"),
		col("rx_bytes", t.Int64, t.STBytes, "Bytes received"),
		col("rx_packets", t.Int64, t.STNone, "Packets received"),
		col("rx_errors", t.Int64, t.STNone, "Receive errors"),
		col("rx_drops", t.Int64, t.STNone, "Receive drops"),
		col("tx_bytes", t.Int64, t.STBytes, "Bytes sent"),
		col("tx_packets", t.Int64, t.STNone, "Packets sent"),
		col("tx_errors", t.Int64, t.STNone, "Send errors"),
		col("tx_drops", t.Int64, t.STNone, "Send drops"),
	},
}

// ProbeStatus reports the state of each probe a source attached or failed to.
var ProbeStatus = Table{
	Name: "probe_status",
	Desc: "State of every probe the sources attach",
	Relation: t.Relation{
		col("time_", t.Time64NS, t.STTimeNS, "Time of the report"),
		col("upid", t.UInt128, t.STUPID, "Process of the source"),
		col("source_connector", t.String, t.STNone, "Source name"),
		col("tracepoint", t.String, t.STNone, "Probe name"),
		col("status", t.Int64, t.STNone, "0 ok, non-zero an error code"),
		col("error", t.String, t.STNone, "Error text"),
		col("info", t.String, t.STNone, "Details as JSON"),
	},
}

// StirlingError reports source errors and counters (named after Pixie's
// table so that its scripts find it).
var StirlingError = Table{
	Name: "stirling_error",
	Desc: "Source status, errors and counters",
	Relation: t.Relation{
		col("time_", t.Time64NS, t.STTimeNS, "Time of the report"),
		col("upid", t.UInt128, t.STUPID, "Process of the source"),
		col("source_connector", t.String, t.STNone, "Source name"),
		col("status", t.Int64, t.STNone, "0 ok, non-zero an error code"),
		col("error", t.String, t.STNone, "Error text"),
		col("context", t.String, t.STNone, "Counters and details as JSON"),
	},
}

// All lists the tables pxq's sources know, by name.
var All = map[string]Table{}

func init() {
	for _, tb := range []Table{HTTPEvents, DNSEvents, ConnStats, ProcessStats, NetworkStats, ProbeStatus, StirlingError} {
		All[tb.Name] = tb
	}
}

// Names returns the table names, sorted.
func Names() []string {
	var out []string
	for n := range All {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
