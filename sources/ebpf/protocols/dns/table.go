package dns

import (
	"encoding/json"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is dns_events: one row per DNS query and its answer.
var Table = table.Declare("dns_events", "DNS queries and their answers, traced from socket syscalls", &cols)

// cols are the columns of dns_events, in order.
var cols struct {
	protocols.ConnColumns
	ReqHeader  table.StringCol `col:"req_header" desc:"Query header as JSON"`
	ReqBody    table.StringCol `col:"req_body" desc:"Query questions as JSON"`
	RespHeader table.StringCol `col:"resp_header" desc:"Answer header as JSON"`
	RespBody   table.StringCol `col:"resp_body" desc:"Answer records as JSON"`
	Latency    table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from query to answer"`
}

// emit writes the row of query q and its answer resp, seen at ts.
func (c *conn) emit(q *query, resp *Message, ts int64) {
	reqBody, _ := json.Marshal(map[string]any{"queries": nonNil(q.msg.Questions)})
	respBody, _ := json.Marshal(map[string]any{"answers": nonNilR(resp.Answers)})
	reqHdr, _ := json.Marshal(q.msg.Header)
	respHdr, _ := json.Marshal(resp.Header)
	r := c.row
	cols.Set(r, ts, c.env.Conn, q.remote)
	cols.ReqHeader.SetBytes(r, reqHdr)
	cols.ReqBody.SetBytes(r, reqBody)
	cols.RespHeader.SetBytes(r, respHdr)
	cols.RespBody.SetBytes(r, respBody)
	cols.Latency.Set(r, max(ts-q.ts, 0))
	r.End() // a refused row is counted by the table's writer
}
