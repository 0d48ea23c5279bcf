package lang

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"time"

	"go.starlark.net/starlark"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// This file is PxL's OpenTelemetry surface: px.export(df, spec) with the
// spec built by px.otel.Data from px.otel.metric.Gauge, .Summary,
// .Histogram, px.otel.trace.Span and px.otel.Endpoint, and px.plugin's
// start_time and end_time (the window a scheduled export covers).
//
// The specs hold column expressions that belong to no frame yet; px.export
// checks them against its frame, computes the ones that are not plain
// columns, and ends the frame in an export sink (plan.Sink with OTel)
// whose input holds exactly the columns the mapping reads.

// DefaultPluginWindow is how far back px.plugin.start_time lies from
// px.plugin.end_time when the request gives no window.
const DefaultPluginWindow = 10 * time.Second

// OTLP span kinds, as px.otel.trace.SPAN_KIND_* name them.
var spanKinds = map[string]int{
	"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2,
	"SPAN_KIND_CLIENT": 3, "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5,
}

// moduleValue is a submodule of px (px.otel, px.otel.metric, px.plugin).
type moduleValue struct {
	name  string
	attrs starlark.StringDict
}

func (m *moduleValue) String() string       { return "<module " + m.name + ">" }
func (m *moduleValue) Type() string         { return "module" }
func (m *moduleValue) Freeze()              {}
func (m *moduleValue) Truth() starlark.Bool { return starlark.True }
func (m *moduleValue) Hash() (uint32, error) {
	return 0, fmt.Errorf("module %s is not hashable", m.name)
}
func (m *moduleValue) AttrNames() []string { return m.attrs.Keys() }
func (m *moduleValue) Attr(name string) (starlark.Value, error) {
	if v, ok := m.attrs[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("%s has no attribute %q%s", m.name, name, didYouMean(name, m.attrs.Keys()))
}

// otelModule returns px.otel.
func (m *pxModule) otelModule() *moduleValue {
	fn := func(name string, f func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin("px.otel."+name, f)
	}
	trace := &moduleValue{name: "px.otel.trace", attrs: starlark.StringDict{"Span": fn("trace.Span", otelSpan)}}
	for k, v := range spanKinds {
		trace.attrs[k] = starlark.MakeInt(v)
	}
	return &moduleValue{name: "px.otel", attrs: starlark.StringDict{
		"Data":     fn("Data", otelData),
		"Endpoint": fn("Endpoint", otelEndpoint),
		"metric": &moduleValue{name: "px.otel.metric", attrs: starlark.StringDict{
			"Gauge":     fn("metric.Gauge", otelMetric(plan.OTelGauge)),
			"Summary":   fn("metric.Summary", otelMetric(plan.OTelSummary)),
			"Histogram": fn("metric.Histogram", otelMetric(plan.OTelHistogram)),
		}},
		"trace": trace,
	}}
}

// pluginModule returns px.plugin: the time window a scheduled script
// covers (Options.PluginStart and PluginEnd), by default the
// DefaultPluginWindow up to now.
func (m *pxModule) pluginModule() *moduleValue {
	end := m.b.plugin[1]
	if end.IsZero() {
		end = m.b.now
	}
	start := m.b.plugin[0]
	if start.IsZero() {
		start = end.Add(-DefaultPluginWindow)
	}
	return &moduleValue{name: "px.plugin", attrs: starlark.StringDict{
		"start_time": timeValue(start.UnixNano()),
		"end_time":   timeValue(end.UnixNano()),
	}}
}

// otelAttr is an attribute of a spec: a name and a column expression
// (a string literal for a constant).
type otelAttr struct {
	name string
	e    plan.Expr
}

// otelMetricSpec and otelSpanSpec are plan.OTelMetric and plan.OTelSpan
// with expressions where the plan has column names.
type otelMetricSpec struct {
	m                            plan.OTelMetric
	value, count, sum, quantiles plan.Expr
	min, max                     plan.Expr
	quantileCols, buckets        []plan.Expr
	attrs                        []otelAttr
}

type otelSpanSpec struct {
	s                             plan.OTelSpan
	name, start, end              plan.Expr
	traceID, spanID, parentSpanID plan.Expr
	kindGiven                     bool
	attrs                         []otelAttr
}

// otelItem is what px.otel.metric.* and px.otel.trace.Span return: one
// entry of px.otel.Data's data list.
type otelItem struct {
	metric *otelMetricSpec
	span   *otelSpanSpec
}

func (o *otelItem) String() string {
	if o.metric != nil {
		kind := [...]string{"Gauge", "Summary", "Histogram"}[o.metric.m.Kind]
		return fmt.Sprintf("px.otel.metric.%s(%q)", kind, o.metric.m.Name)
	}
	return "px.otel.trace.Span()"
}
func (o *otelItem) Type() string          { return "OTelDataContainer" }
func (o *otelItem) Freeze()               {}
func (o *otelItem) Truth() starlark.Bool  { return starlark.True }
func (o *otelItem) Hash() (uint32, error) { return 0, fmt.Errorf("OTelDataContainer is not hashable") }

// otelDataValue is px.otel.Data(…): what px.export takes.
type otelDataValue struct {
	endpoint *plan.OTelEndpoint
	resource []otelAttr
	items    []*otelItem
}

func (o *otelDataValue) String() string        { return "px.otel.Data()" }
func (o *otelDataValue) Type() string          { return "Exporter" }
func (o *otelDataValue) Freeze()               {}
func (o *otelDataValue) Truth() starlark.Bool  { return starlark.True }
func (o *otelDataValue) Hash() (uint32, error) { return 0, fmt.Errorf("Exporter is not hashable") }

// otelEndpointValue is px.otel.Endpoint(…).
type otelEndpointValue struct{ e *plan.OTelEndpoint }

func (o *otelEndpointValue) String() string        { return fmt.Sprintf("px.otel.Endpoint(%q)", o.e.URL) }
func (o *otelEndpointValue) Type() string          { return "Endpoint" }
func (o *otelEndpointValue) Freeze()               {}
func (o *otelEndpointValue) Truth() starlark.Bool  { return starlark.True }
func (o *otelEndpointValue) Hash() (uint32, error) { return 0, fmt.Errorf("Endpoint is not hashable") }

// otelEndpoint implements px.otel.Endpoint(url, headers={}, insecure=False,
// timeout=5): timeout is in seconds.
func otelEndpoint(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var url string
	var headers *starlark.Dict
	insecure := false
	timeout := 5
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "url", &url, "headers?", &headers, "insecure?", &insecure, "timeout?", &timeout); err != nil {
		return nil, err
	}
	if url == "" {
		return nil, fmt.Errorf("%s: url is empty", fn.Name())
	}
	if timeout < 0 {
		return nil, fmt.Errorf("%s: timeout must be seconds >= 0, got %d", fn.Name(), timeout)
	}
	e := &plan.OTelEndpoint{URL: url, Insecure: insecure, Timeout: time.Duration(timeout) * time.Second}
	if headers != nil {
		e.Headers = map[string]string{}
		for _, kv := range headers.Items() {
			k, ok1 := kv[0].(starlark.String)
			v, ok2 := kv[1].(starlark.String)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: headers map strings to strings, got %s: %s", fn.Name(), kv[0].Type(), kv[1].Type())
			}
			e.Headers[string(k)] = string(v)
		}
	}
	return &otelEndpointValue{e: e}, nil
}

// otelData implements px.otel.Data(resource, data, endpoint=None).
func otelData(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var resource *starlark.Dict
	var data, endpoint starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "resource", &resource, "data", &data, "endpoint?", &endpoint); err != nil {
		return nil, err
	}
	out := &otelDataValue{}
	switch e := endpoint.(type) {
	case nil, starlark.NoneType:
	case *otelEndpointValue:
		out.endpoint = e.e
	default:
		return nil, fmt.Errorf("%s: endpoint must be a px.otel.Endpoint, got %s", fn.Name(), endpoint.Type())
	}
	it, ok := data.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("%s: data must be a list of px.otel.metric.* and px.otel.trace.Span, got %s", fn.Name(), data.Type())
	}
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		item, ok := x.(*otelItem)
		if !ok {
			return nil, fmt.Errorf("%s: data holds a %s; it takes px.otel.metric.Gauge, .Summary, .Histogram and px.otel.trace.Span", fn.Name(), x.Type())
		}
		out.items = append(out.items, item)
	}
	if len(out.items) == 0 {
		return nil, fmt.Errorf("%s: data is empty: give at least one metric or span", fn.Name())
	}
	var err error
	if out.resource, err = otelAttrs(resource, "resource"); err != nil {
		return nil, fmt.Errorf("%s: %v", fn.Name(), err)
	}
	for _, a := range out.resource {
		if a.name == "service.name" {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%s: resource must name 'service.name'", fn.Name())
}

// otelAttrs reads a dict of attribute names to columns or constants.
func otelAttrs(d *starlark.Dict, what string) ([]otelAttr, error) {
	if d == nil {
		return nil, nil
	}
	var out []otelAttr
	for _, kv := range d.Items() {
		k, ok := kv[0].(starlark.String)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s keys are non-empty strings, got %s", what, kv[0])
		}
		e, err := toPlanExpr(kv[1])
		if err != nil {
			return nil, fmt.Errorf("%s %q: %v", what, k, err)
		}
		if err := attrType(e); err != nil {
			return nil, fmt.Errorf("%s %q: %v", what, k, err)
		}
		out = append(out, otelAttr{name: string(k), e: e})
	}
	return out, nil
}

func attrType(e plan.Expr) error {
	switch e.Type() {
	case types.String, types.Int64, types.Float64, types.Boolean, types.Time64NS:
		return nil
	}
	return fmt.Errorf("%s is %s; attributes are strings, numbers or booleans (px.upid_to_string turns a UPID into text)", e, e.Type())
}

// metricName is the OpenTelemetry instrument name syntax.
var metricName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_./-]{0,254}$`)

// otelMetric implements px.otel.metric.Gauge(name, value, description=”,
// attributes={}, unit=None), .Summary(name, count, sum, quantile_values,
// …) and .Histogram(name, count=None, sum=None, quantiles=None,
// bounds=None, bucket_counts=None, min=None, max=None, …).
func otelMetric(kind plan.OTelMetricKind) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name, description string
		var unit, value, count, sum, quantiles, bounds, buckets, min, max starlark.Value
		var qvals, attributes *starlark.Dict
		var err error
		switch kind {
		case plan.OTelGauge:
			err = starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "value", &value, "description?", &description,
				"attributes?", &attributes, "unit?", &unit)
		case plan.OTelSummary:
			err = starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "count", &count, "sum", &sum, "quantile_values", &qvals,
				"description?", &description, "attributes?", &attributes, "unit?", &unit)
		case plan.OTelHistogram:
			err = starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "count?", &count, "sum?", &sum, "quantiles?", &quantiles,
				"bounds?", &bounds, "bucket_counts?", &buckets, "min?", &min, "max?", &max,
				"description?", &description, "attributes?", &attributes, "unit?", &unit)
		}
		if err != nil {
			return nil, err
		}
		if !metricName.MatchString(name) {
			return nil, fmt.Errorf("%s: metric name %q is invalid: a letter, then up to 254 letters, digits, '_', '.', '-' or '/'", fn.Name(), name)
		}
		s := &otelMetricSpec{m: plan.OTelMetric{Kind: kind, Name: name, Description: description}}
		if unit != nil && unit != starlark.None {
			u, ok := unit.(starlark.String)
			if !ok {
				return nil, fmt.Errorf("%s: unit must be a string, got %s", fn.Name(), unit.Type())
			}
			s.m.Unit = string(u)
		}
		col := func(v starlark.Value, what string, want ...types.DataType) (plan.Expr, error) {
			return typedArg(fn, v, what, want...)
		}
		num := []types.DataType{types.Int64, types.Float64}
		if s.value, err = col(value, "value", num...); err != nil {
			return nil, err
		}
		if s.count, err = col(count, "count", types.Int64, types.Float64); err != nil {
			return nil, err
		}
		if s.sum, err = col(sum, "sum", num...); err != nil {
			return nil, err
		}
		if s.quantiles, err = col(quantiles, "quantiles", types.String); err != nil {
			return nil, err
		}
		if s.min, err = col(min, "min", num...); err != nil {
			return nil, err
		}
		if s.max, err = col(max, "max", num...); err != nil {
			return nil, err
		}
		if qvals != nil {
			type qv struct {
				q float64
				e plan.Expr
			}
			var qs []qv
			for _, kv := range qvals.Items() {
				q, ok := starlark.AsFloat(kv[0])
				if !ok || q < 0 || q > 1 || math.IsNaN(q) {
					return nil, fmt.Errorf("%s: quantile_values keys are quantiles between 0 and 1, got %s", fn.Name(), kv[0])
				}
				e, err := col(kv[1], fmt.Sprintf("quantile %g", q), num...)
				if err != nil {
					return nil, err
				}
				qs = append(qs, qv{q, e})
			}
			if len(qs) == 0 {
				return nil, fmt.Errorf("%s: quantile_values is empty", fn.Name())
			}
			// OTLP wants quantiles in increasing order.
			sort.SliceStable(qs, func(i, j int) bool { return qs[i].q < qs[j].q })
			for _, x := range qs {
				s.m.Quantiles = append(s.m.Quantiles, plan.OTelQuantile{Quantile: x.q})
				s.quantileCols = append(s.quantileCols, x.e)
			}
		}
		if bounds != nil && bounds != starlark.None {
			if s.m.Bounds, err = floatList(bounds); err != nil {
				return nil, fmt.Errorf("%s: bounds: %v", fn.Name(), err)
			}
		}
		if buckets != nil && buckets != starlark.None {
			it, ok := buckets.(starlark.Iterable)
			if !ok {
				return nil, fmt.Errorf("%s: bucket_counts must be a list of columns, got %s", fn.Name(), buckets.Type())
			}
			iter := it.Iterate()
			var x starlark.Value
			for i := 0; iter.Next(&x); i++ {
				e, err := col(x, fmt.Sprintf("bucket_counts[%d]", i), types.Int64)
				if err != nil {
					iter.Done()
					return nil, err
				}
				s.buckets = append(s.buckets, e)
			}
			iter.Done()
		}
		if kind == plan.OTelHistogram {
			switch {
			case s.quantiles != nil && s.buckets != nil:
				return nil, fmt.Errorf("%s: give quantiles (a px.quantiles column) or bucket_counts, not both", fn.Name())
			case s.quantiles != nil && s.count == nil:
				return nil, fmt.Errorf("%s: a histogram from quantiles needs count (the rows each quantiles value summarizes)", fn.Name())
			case s.quantiles == nil && s.buckets == nil:
				return nil, fmt.Errorf("%s: give quantiles=df.col (from px.quantiles) with count, or bounds and bucket_counts", fn.Name())
			case s.buckets != nil && len(s.buckets) != len(s.m.Bounds)+1:
				return nil, fmt.Errorf("%s: bucket_counts has %d columns; with %d bounds it needs %d (the last for values above every bound)",
					fn.Name(), len(s.buckets), len(s.m.Bounds), len(s.m.Bounds)+1)
			}
		}
		if s.attrs, err = otelAttrs(attributes, "attributes"); err != nil {
			return nil, fmt.Errorf("%s: %v", fn.Name(), err)
		}
		return &otelItem{metric: s}, nil
	}
}

// typedArg is argument what of fn as a column expression of one of the
// types want; nil when it is left out (None).
func typedArg(fn *starlark.Builtin, v starlark.Value, what string, want ...types.DataType) (plan.Expr, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	e, err := toPlanExpr(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %v", fn.Name(), what, err)
	}
	for _, t := range want {
		if e.Type() == t {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%s: %s must be %v, got %s %s", fn.Name(), what, want, e.Type(), e)
}

// floatList reads strictly increasing finite numbers.
func floatList(v starlark.Value) ([]float64, error) {
	it, ok := v.(starlark.Iterable)
	if !ok {
		return nil, fmt.Errorf("want a list of numbers, got %s", v.Type())
	}
	iter := it.Iterate()
	defer iter.Done()
	var out []float64
	var x starlark.Value
	for iter.Next(&x) {
		f, ok := starlark.AsFloat(x)
		if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("want finite numbers, got %s", x)
		}
		if len(out) > 0 && f <= out[len(out)-1] {
			return nil, fmt.Errorf("must increase: %g after %g", f, out[len(out)-1])
		}
		out = append(out, f)
	}
	return out, nil
}

// otelSpan implements px.otel.trace.Span(name, start_time, end_time,
// trace_id=None, span_id=None, parent_span_id=None, attributes={},
// kind=SPAN_KIND_SERVER).
func otelSpan(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name, start, end, traceID, spanID, parentID, kind starlark.Value
	var attributes *starlark.Dict
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "name", &name, "start_time", &start, "end_time", &end,
		"trace_id?", &traceID, "span_id?", &spanID, "parent_span_id?", &parentID, "attributes?", &attributes, "kind?", &kind); err != nil {
		return nil, err
	}
	s := &otelSpanSpec{s: plan.OTelSpan{Kind: spanKinds["SPAN_KIND_SERVER"]}}
	col := func(v starlark.Value, what string, want ...types.DataType) (plan.Expr, error) {
		return typedArg(fn, v, what, want...)
	}
	var err error
	if n, ok := name.(starlark.String); ok {
		if n == "" {
			return nil, fmt.Errorf("%s: name is empty", fn.Name())
		}
		s.s.Name = string(n)
	} else if s.name, err = col(name, "name", types.String); err != nil {
		return nil, err
	}
	times := []types.DataType{types.Time64NS, types.Int64}
	if s.start, err = col(start, "start_time", times...); err != nil {
		return nil, err
	}
	if s.end, err = col(end, "end_time", times...); err != nil {
		return nil, err
	}
	if s.start == nil || s.end == nil {
		return nil, fmt.Errorf("%s: start_time and end_time are columns", fn.Name())
	}
	if s.traceID, err = col(traceID, "trace_id", types.String); err != nil {
		return nil, err
	}
	if s.spanID, err = col(spanID, "span_id", types.String); err != nil {
		return nil, err
	}
	if s.parentSpanID, err = col(parentID, "parent_span_id", types.String); err != nil {
		return nil, err
	}
	if kind != nil && kind != starlark.None {
		k, err := starlark.AsInt32(kind)
		if err != nil || k < 0 || k > 5 {
			return nil, fmt.Errorf("%s: kind must be one of px.otel.trace.SPAN_KIND_*, got %s", fn.Name(), kind)
		}
		s.s.Kind, s.kindGiven = k, true
	}
	if s.attrs, err = otelAttrs(attributes, "attributes"); err != nil {
		return nil, fmt.Errorf("%s: %v", fn.Name(), err)
	}
	return &otelItem{span: s}, nil
}

// export implements px.export(out, export_spec).
func (m *pxModule) export(_ *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var df *DataFrame
	var spec starlark.Value
	if err := starlark.UnpackArgs(fn.Name(), args, kwargs, "out", &df, "export_spec", &spec); err != nil {
		return nil, err
	}
	data, ok := spec.(*otelDataValue)
	if !ok {
		return nil, fmt.Errorf("px.export: export_spec must be a px.otel.Data(…), got %s", spec.Type())
	}
	x, node, err := df.exportNode(data)
	if err != nil {
		return nil, err
	}
	if err := m.b.count(); err != nil {
		return nil, err
	}
	if err := m.b.addSink(&DataFrame{node: node, b: m.b}, "otel_export"); err != nil {
		return nil, err
	}
	m.b.sinks[len(m.b.sinks)-1].OTel = x
	return starlark.None, nil
}

// exportColumns assigns the expressions of an export to columns of its
// input: a column of the frame keeps its name, anything else is computed
// into a column named __otel_N.
type exportColumns struct {
	d     *DataFrame
	exprs []plan.NamedExpr
}

func (c *exportColumns) col(e plan.Expr) (string, error) {
	if e == nil {
		return "", nil
	}
	if err := c.d.check(e); err != nil {
		return "", err
	}
	name := fmt.Sprintf("__otel_%d", len(c.exprs))
	if col, ok := e.(*plan.Column); ok {
		name = col.Name
	}
	for _, x := range c.exprs {
		if x.Name == name || plan.ExprEqual(x.Expr, e) {
			return x.Name, nil
		}
	}
	c.exprs = append(c.exprs, plan.NamedExpr{Name: name, Expr: e})
	return name, nil
}

func (c *exportColumns) attrs(as []otelAttr) ([]plan.OTelAttr, error) {
	var out []plan.OTelAttr
	for _, a := range as {
		if l, ok := a.e.(*plan.Literal); ok && l.T == types.String {
			out = append(out, plan.OTelAttr{Name: a.name, Value: l.Value.(string)})
			continue
		}
		name, err := c.col(a.e)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %v", a.name, err)
		}
		out = append(out, plan.OTelAttr{Name: a.name, Column: name})
	}
	return out, nil
}

// use reads the frame's column name into the export when it exists with
// type t, and returns it ("" when it does not).
func (c *exportColumns) use(name string, t types.DataType) string {
	rel := c.d.rel()
	if i := rel.Index(name); i >= 0 && rel[i].Type == t {
		if _, err := c.col(colRef(rel[i])); err == nil {
			return name
		}
	}
	return ""
}

// exportNode builds the export's mapping against d and the Map that
// makes its input.
func (d *DataFrame) exportNode(data *otelDataValue) (*plan.OTelExport, plan.Node, error) {
	c := &exportColumns{d: d}
	x := &plan.OTelExport{Endpoint: data.endpoint}
	var err error
	if x.Resource, err = c.attrs(data.resource); err != nil {
		return nil, nil, fmt.Errorf("px.export: resource %v", err)
	}
	for _, item := range data.items {
		if s := item.metric; s != nil {
			m, err := c.metric(s)
			if err != nil {
				return nil, nil, fmt.Errorf("px.export: metric %s: %v", s.m.Name, err)
			}
			x.Metrics = append(x.Metrics, m)
		}
		if s := item.span; s != nil {
			sp, err := c.span(s)
			if err != nil {
				return nil, nil, fmt.Errorf("px.export: span: %v", err)
			}
			x.Spans = append(x.Spans, sp)
		}
	}
	n := &plan.Map{Input: d.node, Exprs: c.exprs, Pos: d.b.pos()}
	if err := budgetOf(d.b.thread).chargeNode(n); err != nil {
		return nil, nil, err
	}
	return x, n, nil
}

func (c *exportColumns) metric(s *otelMetricSpec) (plan.OTelMetric, error) {
	m := s.m
	m.Quantiles = append([]plan.OTelQuantile(nil), s.m.Quantiles...)
	var err error
	for _, f := range []struct {
		dst *string
		e   plan.Expr
	}{{&m.Value, s.value}, {&m.Count, s.count}, {&m.Sum, s.sum}, {&m.FromQuantiles, s.quantiles}, {&m.Min, s.min}, {&m.Max, s.max}} {
		if *f.dst, err = c.col(f.e); err != nil {
			return m, err
		}
	}
	for i, e := range s.quantileCols {
		if m.Quantiles[i].Column, err = c.col(e); err != nil {
			return m, err
		}
	}
	for _, e := range s.buckets {
		name, err := c.col(e)
		if err != nil {
			return m, err
		}
		m.BucketCounts = append(m.BucketCounts, name)
	}
	if m.Attributes, err = c.attrs(s.attrs); err != nil {
		return m, err
	}
	if m.Unit == "" {
		m.Unit = unitOf(s)
	}
	// Points are at their row's time_, as Pixie's are; a frame without
	// one (a groupby that dropped it) gives the query's now.
	m.Time = c.use("time_", types.Time64NS)
	return m, nil
}

// unitOf derives a metric's unit from the semantic type of its values.
func unitOf(s *otelMetricSpec) string {
	e := s.value
	if len(s.quantileCols) > 0 {
		e = s.quantileCols[0]
	}
	if e == nil {
		e = s.sum
	}
	if e == nil {
		return ""
	}
	switch e.Semantic() {
	case types.STDurationNS:
		return "ns"
	case types.STBytes:
		return "By"
	case types.STPercent:
		return "%"
	case types.STThroughputPerNS:
		return "1/ns"
	case types.STThroughputBytesPerNS:
		return "By/ns"
	}
	return ""
}

func (c *exportColumns) span(s *otelSpanSpec) (plan.OTelSpan, error) {
	sp := s.s
	var err error
	for _, f := range []struct {
		dst *string
		e   plan.Expr
	}{{&sp.NameColumn, s.name}, {&sp.Start, s.start}, {&sp.End, s.end}, {&sp.TraceID, s.traceID}, {&sp.SpanID, s.spanID}, {&sp.ParentSpanID, s.parentSpanID}} {
		if *f.dst, err = c.col(f.e); err != nil {
			return sp, err
		}
	}
	if sp.Attributes, err = c.attrs(s.attrs); err != nil {
		return sp, err
	}
	// Request rows say which side of the request they saw: that is the
	// span's kind unless the script says otherwise, and with the
	// connection it pairs a client's row with its server's.
	if sp.Role = c.use("trace_role", types.Int64); sp.Role != "" {
		sp.KindFromRole = !s.kindGiven
		if s.traceID == nil && s.spanID == nil && s.parentSpanID == nil {
			conn := &plan.OTelConn{
				LocalAddr: c.use("local_addr", types.String), LocalPort: c.use("local_port", types.Int64),
				RemoteAddr: c.use("remote_addr", types.String), RemotePort: c.use("remote_port", types.Int64),
			}
			if conn.LocalAddr != "" && conn.LocalPort != "" && conn.RemoteAddr != "" && conn.RemotePort != "" {
				sp.Conn = conn
			}
		}
	}
	return sp, nil
}
