package nats

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is nats_events.beta: one row per NATS command, from either side,
// seen from the traced side.
var Table = table.Declare("nats_events.beta", "NATS protocol commands, one row each, traced from socket syscalls", &cols)

// cols are the columns of nats_events.beta, in order.
var cols struct {
	protocols.ConnColumns
	Cmd  table.StringCol `col:"cmd" desc:"The command: CONNECT, INFO, PUB, HPUB, SUB, UNSUB, MSG, HMSG, PING, PONG; -ERR for an error that answers no command"`
	Body table.StringCol `col:"body" desc:"The command's fields as JSON (subject, sid, reply-to, queue group, max_msgs, payload, payload_size, headers), the options of INFO and CONNECT (credentials hidden)"`
	Resp table.StringCol `col:"resp" desc:"The server's answer in verbose mode, +OK or the -ERR line; empty otherwise"`
}

// emit writes a row.
func (c *conn) emit(k kind, body, resp []byte, ts int64) {
	row := c.row
	if row == nil {
		return
	}
	cols.Set(row, ts, c.env.Conn, netip.AddrPort{})
	cols.Cmd.Set(row, kindNames[k])
	cols.Body.SetBytes(row, body)
	cols.Resp.SetBytes(row, resp)
	row.End() // a refused row is counted by the table's writer
}
