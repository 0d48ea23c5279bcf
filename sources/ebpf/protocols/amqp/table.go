package amqp

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is amqp_events: one row per synchronous method with its answer,
// and one per asynchronous method (publish, deliver, ack, …) with its
// content, seen from the traced side.
var Table = table.Declare("amqp_events", "AMQP 0-9-1 methods, a synchronous one with its answer, traced from socket syscalls", &cols)

// cols are the columns of amqp_events, in order.
var cols struct {
	protocols.ConnColumns
	FrameType    table.Int64Col  `col:"frame_type" desc:"The highest frame type of the row's frames: 1 method, 2 with a content header, 3 with content body frames"`
	Channel      table.Int64Col  `col:"channel" desc:"The channel of the method"`
	ReqClassID   table.Int64Col  `col:"req_class_id" desc:"Class of the method the client sent (10 connection, 20 channel, 40 exchange, 50 queue, 60 basic, 85 confirm, 90 tx); 0 if none"`
	ReqMethodID  table.Int64Col  `col:"req_method_id" desc:"Method id, in its class, of the method the client sent; 0 if none"`
	RespClassID  table.Int64Col  `col:"resp_class_id" desc:"Class of the method the server sent; 0 if none"`
	RespMethodID table.Int64Col  `col:"resp_method_id" desc:"Method id, in its class, of the method the server sent; 0 if none"`
	ReqMsg       table.StringCol `col:"req_msg" desc:"The client's method's arguments as JSON, with body_size, properties and body for content"`
	RespMsg      table.StringCol `col:"resp_msg" desc:"The server's method's arguments as JSON, with body_size, properties and body for content"`
	Latency      table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from a synchronous method's first byte to its answer's last; 0 for an asynchronous method"`
}

// emit writes the row of method a and its answer b (nil: none).
func (c *conn) emit(a, b *method) {
	row := c.row
	if row == nil {
		return
	}
	req, resp := a, b
	if !a.client {
		req, resp = b, a
	}
	ts, ft, lat := a.endTS, a.frameType, int64(0)
	if b != nil {
		ts, ft, lat = max(ts, b.endTS), max(ft, b.frameType), max(b.endTS-a.startTS, 0)
	}
	cols.Set(row, ts, c.env.Conn, netip.AddrPort{})
	cols.FrameType.Set(row, ft)
	cols.Channel.Set(row, int64(a.channel))
	var rc, rm, sc, sm int64
	var rmsg, smsg []byte
	if req != nil {
		rc, rm, rmsg = int64(req.class), int64(req.id), req.msg
	}
	if resp != nil {
		sc, sm, smsg = int64(resp.class), int64(resp.id), resp.msg
	}
	cols.ReqClassID.Set(row, rc)
	cols.ReqMethodID.Set(row, rm)
	cols.RespClassID.Set(row, sc)
	cols.RespMethodID.Set(row, sm)
	cols.ReqMsg.SetBytes(row, rmsg)
	cols.RespMsg.SetBytes(row, smsg)
	cols.Latency.Set(row, lat)
	row.End() // a refused row is counted by the table's writer
}
