// Package tables lists every table pxq's sources fill. Each table is
// declared beside the source that fills it, with its columns as typed
// handles (table.Decl):
//
//	http_events     sources/ebpf/protocols/http/table.go
//	dns_events      sources/ebpf/protocols/dns/table.go
//	conn_stats      sources/ebpf/connstats/connstats.go
//	stirling_error  sources/ebpf/health/health.go
//	probe_status    sources/ebpf/health/health.go
//	process_stats   sources/proc/table.go
//	network_stats   sources/proc/table.go
//	jvm_stats       sources/jvm/table.go
//	stack_traces.beta sources/profiler/table.go
//
// and a protocol's tables come from the protocol list of
// sources/ebpf/protocols/all. This package reads those declarations for
// everything that describes tables without filling them: the engine
// creates its store's tables from All (which the compiler's catalog and
// GetSchemas read), `pxq schemas` prints it, and docs/tables.md is
// generated from it (checked by this package's tests).
package tables

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/sources/ebpf/connstats"
	"github.com/pxq-dev/pxq/sources/ebpf/health"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/all"
	"github.com/pxq-dev/pxq/sources/jvm"
	"github.com/pxq-dev/pxq/sources/proc"
	"github.com/pxq-dev/pxq/sources/profiler"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Decls returns the declarations of every source table, sorted by name.
func Decls() []*table.Decl {
	ds := []*table.Decl{
		connstats.Table,
		health.StirlingError,
		health.ProbeStatus,
		proc.ProcessStats,
		proc.NetworkStats,
		jvm.Table,
		profiler.StackTraces,
	}
	seen := map[*table.Decl]bool{}
	for _, d := range ds {
		seen[d] = true
	}
	for _, p := range all.Protocols() {
		for _, d := range p.Tables() {
			if !seen[d] {
				seen[d] = true
				ds = append(ds, d)
			}
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Name() < ds[j].Name() })
	return ds
}

// All holds every source table's description, by name.
var All = describe(Decls())

func describe(ds []*table.Decl) map[string]schema.Table {
	m := make(map[string]schema.Table, len(ds))
	for _, d := range ds {
		if _, dup := m[d.Name()]; dup {
			panic(fmt.Sprintf("tables: two declarations of table %s", d.Name()))
		}
		m[d.Name()] = schema.Table{Name: d.Name(), Desc: d.Desc(), Relation: d.Relation()}
	}
	return m
}

// Names returns the table names, sorted.
func Names() []string {
	out := make([]string, 0, len(All))
	for n := range All {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// WriteMarkdown writes a section per table, in name order, with every
// column: the reference part of docs/tables.md.
func WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	for i, n := range Names() {
		t := All[n]
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "## %s\n\n%s\n\n| column | type | semantic type | meaning |\n|---|---|---|---|\n", t.Name, t.Desc)
		for _, c := range t.Relation {
			sem := ""
			if c.Semantic > types.STNone {
				sem = c.Semantic.String()
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", c.Name, strings.ToLower(c.Type.String()), sem, c.Desc)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
