package mongodb

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is mongodb_events: one row per command with its reply (one per
// reply of a command answered by several), seen from the traced side.
var Table = table.Declare("mongodb_events", "MongoDB commands and their replies, traced from socket syscalls", &cols)

// cols are the columns of mongodb_events, in order.
var cols struct {
	protocols.ConnColumns
	ReqCmd     table.StringCol `col:"req_cmd" desc:"The command's name, the first key of its document (find, insert, update, delete, aggregate, getMore, hello, isMaster, …)"`
	ReqBody    table.StringCol `col:"req_body" desc:"The command's document as relaxed Extended JSON, with its document sequences (insert's documents, …) under their names; truncated"`
	RespStatus table.StringCol `col:"resp_status" desc:"The reply's status as Pixie shows it: its first key for a cursor (cursor), else ok: 1 or ok: 0; empty for a command that asks for no reply (moreToCome)"`
	RespBody   table.StringCol `col:"resp_body" desc:"The reply's document as relaxed Extended JSON (ok, n, errmsg and code of an error, a cursor's batch); truncated"`
	Latency    table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from the command's first byte to the reply's last (from the previous reply for a streamed one); 0 when no reply is asked for"`
}

// emit writes a row.
func (c *conn) emit(cmd string, req []byte, status string, resp []byte, start, ts int64) {
	row := c.Row
	if row == nil {
		return
	}
	cols.Set(row, ts, c.Env.Conn, netip.AddrPort{})
	cols.ReqCmd.Set(row, cmd)
	cols.ReqBody.SetBytes(row, req)
	cols.RespStatus.Set(row, status)
	cols.RespBody.SetBytes(row, resp)
	cols.Latency.Set(row, max(ts-start, 0))
	row.End() // a refused row is counted by the table's writer
}
