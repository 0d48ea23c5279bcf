package plan

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// OTelExport maps the rows of an export sink (px.export(df,
// px.otel.Data(…))) to OpenTelemetry metrics and spans. The rows go to an
// OTLP endpoint, not to the query's output. Columns are named as in the
// sink's input, which the compiler makes hold what the mapping reads and
// nothing else. An OTelExport is immutable: the planner's copies of a
// sink share it.
type OTelExport struct {
	// Endpoint is the collector to send to; nil means the request's
	// default (Pixie's otel_endpoint_config) or else the server's
	// (--otel-endpoint).
	Endpoint *OTelEndpoint
	// Resource describes what produced each row; it holds service.name.
	Resource []OTelAttr
	Metrics  []OTelMetric
	Spans    []OTelSpan
}

// OTelEndpoint is px.otel.Endpoint: a collector and how to talk to it.
type OTelEndpoint struct {
	URL      string
	Headers  map[string]string
	Insecure bool
	// Timeout bounds one attempt to send (0: the exporter's default).
	Timeout time.Duration
}

// OTelAttr is an attribute: the value of a column on each row, or a
// constant when Column is "".
type OTelAttr struct {
	Name   string
	Column string
	Value  string
}

// OTelMetricKind is the OpenTelemetry metric type a mapping makes.
type OTelMetricKind int

const (
	OTelGauge OTelMetricKind = iota
	OTelSummary
	OTelHistogram
)

func (k OTelMetricKind) String() string {
	return [...]string{"gauge", "summary", "histogram"}[k]
}

// OTelMetric makes one data point of a metric per row.
type OTelMetric struct {
	Kind              OTelMetricKind
	Name, Description string
	Unit              string
	// Time is the column of each point's time; "" means the query's now.
	Time string
	// Value is a gauge's column (INT64 or FLOAT64).
	Value string
	// Count and Sum are a summary's or a histogram's columns (Sum may be
	// "" for a histogram).
	Count, Sum string
	// Quantiles are a summary's quantile columns.
	Quantiles []OTelQuantile
	// FromQuantiles is the px.quantiles column a histogram's buckets are
	// estimated from; otherwise BucketCounts are its count columns, one
	// per bound and the last for values above every bound.
	FromQuantiles string
	Bounds        []float64
	BucketCounts  []string
	// Min and Max are a histogram's optional extrema columns.
	Min, Max   string
	Attributes []OTelAttr
}

// OTelQuantile is one quantile of a summary and the column of its value.
type OTelQuantile struct {
	Quantile float64
	Column   string
}

// OTelSpan makes one span per row.
type OTelSpan struct {
	// Name is the spans' name when NameColumn is "".
	Name       string
	NameColumn string
	// Start and End are TIME64NS columns.
	Start, End string
	// TraceID, SpanID and ParentSpanID are optional columns of lower-case
	// hex IDs; a missing or malformed ID is generated (none for a parent).
	TraceID, SpanID, ParentSpanID string
	// Kind is the OTLP span kind (1 internal, 2 server, 3 client, 4
	// producer, 5 consumer) of every span, unless KindFromRole: then the
	// trace_role column Role (1 client, 2 server) gives each its own.
	Kind         int
	Role         string
	KindFromRole bool
	// Conn names the connection columns of request rows. With Role and no
	// ID columns, the client's row and the server's row of one request
	// become a parent span and its child in one trace.
	Conn       *OTelConn
	Attributes []OTelAttr
}

// OTelConn names the columns that say which connection a request row
// was exchanged on, seen from the traced side.
type OTelConn struct {
	LocalAddr, LocalPort, RemoteAddr, RemotePort string
}

// Columns returns the columns the mapping reads, each once, in the
// order they first appear.
func (x *OTelExport) Columns() []string {
	var out []string
	seen := map[string]bool{}
	add := func(cols ...string) {
		for _, c := range cols {
			if c != "" && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	attrs := func(as []OTelAttr) {
		for _, a := range as {
			add(a.Column)
		}
	}
	attrs(x.Resource)
	for _, m := range x.Metrics {
		add(m.Time, m.Value, m.Count, m.Sum, m.FromQuantiles, m.Min, m.Max)
		for _, q := range m.Quantiles {
			add(q.Column)
		}
		add(m.BucketCounts...)
		attrs(m.Attributes)
	}
	for _, s := range x.Spans {
		add(s.NameColumn, s.Start, s.End, s.TraceID, s.SpanID, s.ParentSpanID, s.Role)
		if c := s.Conn; c != nil {
			add(c.LocalAddr, c.LocalPort, c.RemoteAddr, c.RemotePort)
		}
		attrs(s.Attributes)
	}
	return out
}

// String renders the mapping on one line, for EXPLAIN.
func (x *OTelExport) String() string {
	var parts []string
	if e := x.Endpoint; e != nil {
		parts = append(parts, "endpoint="+e.URL)
	}
	parts = append(parts, "resource{"+attrString(x.Resource)+"}")
	for _, m := range x.Metrics {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s(", m.Kind, m.Name)
		var args []string
		arg := func(k, v string) {
			if v != "" {
				args = append(args, k+"="+v)
			}
		}
		arg("time", m.Time)
		arg("value", m.Value)
		arg("count", m.Count)
		arg("sum", m.Sum)
		for _, q := range m.Quantiles {
			args = append(args, fmt.Sprintf("q%g=%s", q.Quantile, q.Column))
		}
		arg("quantiles", m.FromQuantiles)
		if len(m.Bounds) > 0 {
			args = append(args, fmt.Sprintf("bounds=%v", m.Bounds))
		}
		if len(m.BucketCounts) > 0 {
			args = append(args, "buckets=["+strings.Join(m.BucketCounts, " ")+"]")
		}
		arg("min", m.Min)
		arg("max", m.Max)
		arg("unit", m.Unit)
		if len(m.Attributes) > 0 {
			args = append(args, "attributes{"+attrString(m.Attributes)+"}")
		}
		b.WriteString(strings.Join(args, ", ") + ")")
		parts = append(parts, b.String())
	}
	for _, s := range x.Spans {
		name := fmt.Sprintf("%q", s.Name)
		if s.NameColumn != "" {
			name = s.NameColumn
		}
		args := []string{"start=" + s.Start, "end=" + s.End}
		for _, kv := range [][2]string{{"trace_id", s.TraceID}, {"span_id", s.SpanID}, {"parent_span_id", s.ParentSpanID}, {"role", s.Role}} {
			if kv[1] != "" {
				args = append(args, kv[0]+"="+kv[1])
			}
		}
		if !s.KindFromRole {
			args = append(args, fmt.Sprintf("kind=%d", s.Kind))
		}
		if c := s.Conn; c != nil {
			args = append(args, fmt.Sprintf("conn=%s:%s>%s:%s", c.LocalAddr, c.LocalPort, c.RemoteAddr, c.RemotePort))
		}
		if len(s.Attributes) > 0 {
			args = append(args, "attributes{"+attrString(s.Attributes)+"}")
		}
		parts = append(parts, "span "+name+"("+strings.Join(args, ", ")+")")
	}
	return "otel " + strings.Join(parts, " ")
}

func attrString(as []OTelAttr) string {
	parts := make([]string, len(as))
	for i, a := range as {
		if a.Column != "" {
			parts[i] = a.Name + "=" + a.Column
		} else {
			parts[i] = fmt.Sprintf("%s=%q", a.Name, a.Value)
		}
	}
	return strings.Join(parts, ", ")
}

// SortedHeaders returns the endpoint's header names in order.
func (e *OTelEndpoint) SortedHeaders() []string {
	names := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
