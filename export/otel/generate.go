package otel

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/types"
)

// Generate returns a script that exports what sc displays, as Pixie's
// GenerateOTelScript does. After each top-level px.display(df, 'name')
// it adds a px.export of the same frame: its INT64 and FLOAT64 columns
// become gauges named name.column, its STRING and BOOLEAN columns
// resource attributes name.column, and service.name is its service
// column (else the script's name). Every px.DataFrame reads
// px.plugin.start_time and end_time, so that a scheduled run covers the
// window since the last. A script whose outputs come from its vis spec
// gets one export per vis function, called with the spec's defaults, at
// its end. The display calls are kept.
//
// pxq goes past Pixie's generator in three ways: a px.quantiles column
// gives gauges of its p50, p90 and p99; a UPID column an attribute of
// its text form; and a table without time_ gets points at the query's
// time instead of an error.
func Generate(sc *scripts.Script, cat lang.Catalog, now time.Time) (string, error) {
	src := sc.PXL
	displays, edits, err := lang.ExportSource(sc.Path, src)
	if err != nil {
		return "", err
	}
	df := unusedName(src, "otel_df")
	service := sc.Name
	switch {
	case len(displays) > 0:
		plain := *sc
		plain.Vis = nil
		rels, err := outputs(&plain, cat, now)
		if err != nil {
			return "", err
		}
		seen := map[string]bool{}
		for _, d := range displays {
			if seen[d.Name] {
				return "", fmt.Errorf("two px.display calls make table %q: name them apart", d.Name)
			}
			seen[d.Name] = true
			rel, ok := rels[d.Name]
			if !ok {
				return "", fmt.Errorf("px.display of %q makes no table (is it inside an if?)", d.Name)
			}
			block, err := exportBlock(df, d.Frame, d.Name, rel, service)
			if err != nil {
				return "", err
			}
			edits = append(edits, lang.Edit{Off: d.End, End: d.End, Text: "\n" + block + "\n"})
		}
	case sc.Vis != nil:
		calls, err := sc.Vis.Calls(nil)
		if err != nil {
			return "", err
		}
		rels, err := outputs(sc, cat, now)
		if err != nil {
			return "", err
		}
		params := parsedParams(sc)
		var blocks []string
		for _, c := range calls {
			rel, ok := rels[c.Output]
			if !ok {
				continue // a function returning a list of frames
			}
			block, err := exportBlock(df, callText(c, params[c.Func]), c.Output, rel, service)
			if errors.Is(err, errNoMetric) {
				blocks = append(blocks, fmt.Sprintf("# %s is not exported: %v.", c.Output, err))
				continue
			}
			if err != nil {
				return "", err
			}
			blocks = append(blocks, block)
		}
		if !strings.Contains(strings.Join(blocks, ""), "px.export(") {
			return "", fmt.Errorf("the script's vis spec makes no table to export: %w", errNoMetric)
		}
		text := "\n\n# Export the tables of the vis spec (its defaults) to OpenTelemetry.\n" + strings.Join(blocks, "\n\n") + "\n"
		edits = append(edits, lang.Edit{Off: len(src), End: len(src), Text: text})
	default:
		return "", errors.New("the script displays nothing: call px.display(df, 'name') at its top level")
	}
	out := applyEdits(src, edits)
	// The result must compile: anything else is a bug here.
	check := &scripts.Script{Name: sc.Name, Path: sc.Path, PXL: []byte(out)}
	if _, err := query.CompileLogical(query.Request{Script: check, Now: now}, cat, query.Limits{}); err != nil {
		return "", fmt.Errorf("the export script does not compile: %w", err)
	}
	return out, nil
}

// outputs compiles sc and returns its tables' relations by name.
func outputs(sc *scripts.Script, cat lang.Catalog, now time.Time) (map[string]types.Relation, error) {
	p, err := query.CompileLogical(query.Request{Script: sc, Now: now}, cat, query.Limits{})
	if err != nil {
		return nil, err
	}
	rels := map[string]types.Relation{}
	for _, s := range p.Sinks {
		if s.OTel == nil {
			rels[s.Name] = s.Relation()
		}
	}
	return rels, nil
}

// exportBlock is the px.export of frame (bound to df first) for table.
func exportBlock(df, frame, table string, rel types.Relation, script string) (string, error) {
	ref := func(col string) string {
		if ident.MatchString(col) {
			return df + "." + col
		}
		return df + "[" + pyQuote(col) + "]"
	}
	var resource, data, notes []string
	serviceCol := ""
	for _, c := range rel {
		if c.Name == "time_" {
			if c.Type != types.Time64NS {
				return "", fmt.Errorf("table %q: its time_ column is %s, not TIME64NS", table, c.Type)
			}
			continue // points are at their row's time_
		}
		name := pyQuote(metricName(table + "." + c.Name))
		if c.Semantic == types.STServiceName && (serviceCol == "" || c.Name == "service") {
			serviceCol = ref(c.Name)
		}
		switch {
		case c.Semantic == types.STQuantiles || c.Semantic == types.STDurationNSQuantiles:
			for _, p := range []string{"p50", "p90", "p99"} {
				data = append(data, fmt.Sprintf("px.otel.metric.Gauge(name=%s, value=px.pluck_float64(%s, '%s')),",
					pyQuote(metricName(table+"."+c.Name+"."+p)), ref(c.Name), p))
			}
		case c.Type == types.String || c.Type == types.Boolean:
			resource = append(resource, fmt.Sprintf("%s: %s,", name, ref(c.Name)))
		case c.Type == types.Int64 || c.Type == types.Float64:
			data = append(data, fmt.Sprintf("px.otel.metric.Gauge(name=%s, value=%s),", name, ref(c.Name)))
		case c.Type == types.UInt128:
			resource = append(resource, fmt.Sprintf("%s: px.upid_to_string(%s),", name, ref(c.Name)))
		default:
			notes = append(notes, fmt.Sprintf("# %s (%s) is not exported: a time other than time_ is no metric.", c.Name, c.Type))
		}
	}
	if len(data) == 0 {
		return "", fmt.Errorf("table %q: %w", table, errNoMetric)
	}
	if serviceCol == "" {
		if i := rel.Index("service"); i >= 0 && rel[i].Type == types.String {
			serviceCol = ref("service")
		} else {
			serviceCol = pyQuote(script)
		}
	}
	resource = append([]string{"'service.name': " + serviceCol + ","}, resource...)
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	fmt.Fprintf(&b, "%s = %s\n", df, frame)
	fmt.Fprintf(&b, "px.export(%s, px.otel.Data(\n    resource={\n", df)
	for _, r := range resource {
		b.WriteString("        " + r + "\n")
	}
	b.WriteString("    },\n    data=[\n")
	for _, d := range data {
		b.WriteString("        " + d + "\n")
	}
	b.WriteString("    ],\n))")
	return b.String(), nil
}

var errNoMetric = errors.New("no INT64 or FLOAT64 column to make a metric of")

var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// pyQuote writes s as a PxL string literal, single-quoted as scripts
// usually write them.
func pyQuote(s string) string {
	if strings.ContainsAny(s, "'\\") || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return strconv.Quote(s)
	}
	return "'" + s + "'"
}

// metricName makes s a valid instrument name.
func metricName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || !(b[0] >= 'a' && b[0] <= 'z' || b[0] >= 'A' && b[0] <= 'Z') {
		b = append([]byte("t"), b...)
	}
	if len(b) > 255 {
		b = b[:255]
	}
	return string(b)
}

// unusedName returns base, or base_N, whichever the script does not use.
func unusedName(src []byte, base string) string {
	name := base
	for i := 1; regexp.MustCompile(`\b` + name + `\b`).Match(src); i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

// parsedParams returns the annotations of sc's functions' parameters.
func parsedParams(sc *scripts.Script) map[string]map[string]string {
	out := map[string]map[string]string{}
	s, err := lang.Parse(sc.Path, sc.PXL)
	if err != nil {
		return out
	}
	for fn, ps := range s.Funcs() {
		out[fn] = map[string]string{}
		for _, p := range ps {
			out[fn][p.Name] = p.Annotation
		}
	}
	return out
}

// callText writes a vis call as PxL: fn(name=value, …), each value
// typed by its parameter's annotation.
func callText(c lang.FuncCall, ann map[string]string) string {
	names := make([]string, 0, len(c.Args))
	for n := range c.Args {
		names = append(names, n)
	}
	sort.Strings(names)
	args := make([]string, len(names))
	for i, n := range names {
		v := c.Args[n]
		switch ann[n] {
		case "int", "float":
			if _, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				args[i] = n + "=" + strings.TrimSpace(v)
				continue
			}
		case "bool":
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true", "t", "yes", "y", "1":
				args[i] = n + "=True"
				continue
			case "false", "f", "no", "n", "0":
				args[i] = n + "=False"
				continue
			}
		}
		args[i] = n + "=" + pyQuote(v)
	}
	return c.Func + "(" + strings.Join(args, ", ") + ")"
}

// applyEdits applies non-overlapping edits to src.
func applyEdits(src []byte, edits []lang.Edit) string {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].Off < edits[j].Off })
	var b strings.Builder
	at := 0
	for _, e := range edits {
		if e.Off < at {
			continue // overlaps an earlier edit
		}
		b.Write(src[at:e.Off])
		b.WriteString(e.Text)
		at = e.End
	}
	b.Write(src[at:])
	return b.String()
}

// exportsAnything reports whether p has an export sink.
func exportsAnything(p *plan.Plan) bool {
	for _, s := range p.Sinks {
		if s.OTel != nil {
			return true
		}
	}
	return false
}
