package schema

import t "github.com/pxq-dev/pxq/types"

// TableFunc describes a table function (a UDTF) such as px.GetSchemas():
// its arguments with defaults and its output relation. The compiler types
// calls with it; the executor produces the rows.
type TableFunc struct {
	Name     string
	Desc     string
	Args     []TableFuncArg
	Relation t.Relation
	// OnAgents says the function describes one agent (its tables, its
	// state), so a distributed plan runs it on every agent and unions.
	OnAgents bool
}

// TableFuncArg is an argument of a table function.
type TableFuncArg struct {
	Name    string
	Type    t.DataType
	Default any
}

func c(name string, typ t.DataType) t.Column {
	return t.Column{Name: name, Type: typ, Semantic: t.STNone}
}

// TableFuncs lists the table functions pxq implements, by name.
var TableFuncs = map[string]TableFunc{
	"GetTables": {Name: "GetTables", Desc: "Tables and their descriptions", OnAgents: true,
		Relation: t.Relation{c("table_name", t.String), c("table_desc", t.String)}},
	"GetSchemas": {Name: "GetSchemas", Desc: "One row per column of every table", OnAgents: true,
		Relation: t.Relation{c("table_name", t.String), c("column_name", t.String), c("column_type", t.String),
			c("pattern_type", t.String), c("column_desc", t.String)}},
	"GetUDFList": {Name: "GetUDFList", Desc: "Registered scalar functions",
		Relation: t.Relation{c("name", t.String), c("return_type", t.String), c("args", t.String)}},
	"GetUDAList": {Name: "GetUDAList", Desc: "Registered aggregates",
		Relation: t.Relation{c("name", t.String), c("return_type", t.String), c("args", t.String)}},
	"GetUDTFList": {Name: "GetUDTFList", Desc: "Registered table functions",
		Relation: t.Relation{c("name", t.String), c("executor", t.String), c("init_args", t.String), c("output_relation", t.String)}},
	"GetAgentStatus": {Name: "GetAgentStatus", Desc: "One row per agent", OnAgents: true,
		Args: []TableFuncArg{{Name: "include_kelvin", Type: t.Boolean, Default: true}},
		Relation: t.Relation{c("agent_id", t.UInt128), c("asid", t.Int64), c("hostname", t.String), c("ip_address", t.String),
			c("agent_state", t.String), {Name: "create_time", Type: t.Time64NS, Semantic: t.STTimeNS}, {Name: "last_heartbeat_ns", Type: t.Int64, Semantic: t.STDurationNS},
			c("kernel_headers_installed", t.Boolean)}},
	"_DebugTableInfo": {Name: "_DebugTableInfo", Desc: "Table store counters per table", OnAgents: true,
		Relation: t.Relation{c("asid", t.Int64), c("name", t.String), c("id", t.Int64), c("batches_added", t.Int64),
			c("batches_expired", t.Int64), {Name: "bytes_added", Type: t.Int64, Semantic: t.STBytes}, c("num_batches", t.Int64), c("compacted_batches", t.Int64),
			{Name: "size", Type: t.Int64, Semantic: t.STBytes}, {Name: "cold_size", Type: t.Int64, Semantic: t.STBytes}, {Name: "max_table_size", Type: t.Int64, Semantic: t.STBytes},
			{Name: "min_time", Type: t.Time64NS, Semantic: t.STTimeNS}}},
	"Version": {Name: "Version", Desc: "pxq version per agent", OnAgents: true,
		Relation: t.Relation{c("asid", t.Int64), c("version", t.String)}},
}
