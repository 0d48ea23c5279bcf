package kafka

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is kafka_events.beta: one row per request with its response (a
// Produce with acks 0 has none), seen from the traced side.
var Table = table.Declare("kafka_events.beta", "Kafka requests and their responses, traced from socket syscalls", &cols)

// cols are the columns of kafka_events.beta, in order.
var cols struct {
	protocols.ConnColumns
	ReqCmd   table.Int64Col  `col:"req_cmd" desc:"The request's API key (0 Produce, 1 Fetch, 3 Metadata, 11 JoinGroup, …; px.kafka_api_key_name names it)"`
	ClientID table.StringCol `col:"client_id" desc:"The client id of the request's header"`
	ReqBody  table.StringCol `col:"req_body" desc:"The request as JSON: topics, partitions, offsets, group and member ids; record sets as their size, batches and records; empty for API keys and versions not parsed"`
	Resp     table.StringCol `col:"resp" desc:"The response as JSON, as req_body; empty for a Produce with acks 0, which has none"`
	Latency  table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from the request's first byte to the response's last; 0 without a response"`
}

// emit writes the row of r, answered by resp at ts.
func (c *conn) emit(r *request, resp []byte, ts int64) {
	row := c.row
	if row == nil {
		return
	}
	if ts < r.startTS {
		ts = r.startTS // a response read before its request's write returned
	}
	cols.Set(row, ts, c.env.Conn, netip.AddrPort{})
	cols.ReqCmd.Set(row, int64(r.key))
	cols.ClientID.Set(row, r.clientID)
	cols.ReqBody.SetBytes(row, r.body)
	cols.Resp.SetBytes(row, resp)
	cols.Latency.Set(row, ts-r.startTS)
	row.End() // a refused row is counted by the table's writer
}
