package pgsql

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is pgsql_events: one row per frontend message that gets an
// answer (Query, Parse, Bind, Describe, Execute, Close, FunctionCall),
// with that answer, seen from the traced side.
var Table = table.Declare("pgsql_events", "PostgreSQL requests and their responses, traced from socket syscalls", &cols)

// cols are the columns of pgsql_events, in order.
var cols struct {
	protocols.ConnColumns
	ReqCmd  table.StringCol `col:"req_cmd" desc:"Request message type: Query, Parse, Bind, Describe, Execute, Close, Function Call"`
	Req     table.StringCol `col:"req" desc:"Request: the query text; for Execute query=[statement] params=[values]; for Bind the portal, statement and values"`
	Resp    table.StringCol `col:"resp" desc:"Response: result rows (CSV, with the column names for a Query) and command tags, or the error; truncated"`
	Latency table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from the request's first byte to the response's last"`
}

// emit writes the row of r, answered at ts.
func (c *conn) emit(r *request, ts int64) {
	row := c.Row
	cols.Set(row, ts, c.Env.Conn, netip.AddrPort{})
	cols.ReqCmd.Set(row, r.cmd)
	cols.Req.SetBytes(row, r.text)
	cols.Resp.SetBytes(row, c.resp)
	cols.Latency.Set(row, max(ts-r.startTS, 0))
	row.End() // a refused row is counted by the table's writer
}
