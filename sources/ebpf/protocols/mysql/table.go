package mysql

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is mysql_events: one row per command (COM_QUERY,
// COM_STMT_EXECUTE, …) with its response, seen from the traced side.
var Table = table.Declare("mysql_events", "MySQL and MariaDB commands and their responses, traced from socket syscalls", &cols)

// cols are the columns of mysql_events, in order.
var cols struct {
	protocols.ConnColumns
	ReqCmd     table.Int64Col  `col:"req_cmd" desc:"Command code: 3 COM_QUERY, 22 COM_STMT_PREPARE, 23 COM_STMT_EXECUTE, 25 COM_STMT_CLOSE, 2 COM_INIT_DB, 14 COM_PING, 1 COM_QUIT, …"`
	ReqBody    table.StringCol `col:"req_body" desc:"Request: the query text; for COM_STMT_EXECUTE query=[statement] params=[values]"`
	RespStatus table.Int64Col  `col:"resp_status" desc:"0 unknown, 1 no response (COM_QUIT, COM_STMT_CLOSE), 2 OK, 3 error"`
	RespBody   table.StringCol `col:"resp_body" desc:"Response: affected_rows=…, columns=… rows=… for a result set, stmt_id=… for a prepare, or ERROR code (state): message"`
	Latency    table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from the command's first byte to the response's last"`
}

// emit writes the row of cmd, answered at ts with status and resp.
func (c *conn) emit(cmd *command, status int64, resp []byte, ts int64) {
	row := c.Row
	if row == nil {
		return
	}
	cols.Set(row, ts, c.Env.Conn, netip.AddrPort{})
	cols.ReqCmd.Set(row, int64(cmd.cmd))
	cols.ReqBody.SetBytes(row, cmd.text)
	cols.RespStatus.Set(row, status)
	cols.RespBody.SetBytes(row, resp)
	cols.Latency.Set(row, max(ts-cmd.startTS, 0))
	row.End() // a refused row is counted by the table's writer
}
