package cql

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is cql_events: one row per request with its response, and one per
// server EVENT, seen from the traced side.
var Table = table.Declare("cql_events", "Cassandra (CQL native protocol) requests and their responses, traced from socket syscalls", &cols)

// cols are the columns of cql_events, in order.
var cols struct {
	protocols.ConnColumns
	ReqOp    table.Int64Col  `col:"req_op" desc:"The request's opcode (1 STARTUP, 5 OPTIONS, 7 QUERY, 9 PREPARE, 10 EXECUTE, 11 REGISTER, 13 BATCH, 15 AUTH_RESPONSE; px.cql_opcode_name names it); 11 for a server EVENT"`
	ReqBody  table.StringCol `col:"req_body" desc:"The request: a QUERY's or PREPARE's text, an EXECUTE's prepared statement, then the bound values as JSON and the consistency; a BATCH as JSON; STARTUP options and REGISTER events as JSON; - for an EVENT"`
	RespOp   table.Int64Col  `col:"resp_op" desc:"The response's opcode (0 ERROR, 2 READY, 3 AUTHENTICATE, 6 SUPPORTED, 8 RESULT, 12 EVENT, 14 AUTH_CHALLENGE, 16 AUTH_SUCCESS)"`
	RespBody table.StringCol `col:"resp_body" desc:"The response: a RESULT's kind and what it holds (columns and row count, keyspace, prepared id, schema change), an ERROR's [code] and message, SUPPORTED options as JSON, an EVENT's change"`
	Latency  table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from the request's first byte to the response's last; 0 for an EVENT"`
}

// emit writes a row: the request r answered by resp.
func (c *conn) emit(r *request, resp *response) {
	row := c.row
	if row == nil {
		return
	}
	ts := resp.endTS
	if ts < r.startTS {
		ts = r.startTS // a response read before its request's write returned
	}
	cols.Set(row, ts, c.env.Conn, netip.AddrPort{})
	cols.ReqOp.Set(row, int64(r.op))
	cols.ReqBody.SetBytes(row, r.body)
	cols.RespOp.Set(row, int64(resp.op))
	cols.RespBody.SetBytes(row, resp.body)
	cols.Latency.Set(row, ts-r.startTS)
	row.End() // a refused row is counted by the table's writer
}
