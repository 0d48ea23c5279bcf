package redis

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Table is redis_events: one row per command with its reply, and one
// per published message a subscriber receives, seen from the traced
// side.
var Table = table.Declare("redis_events", "Redis commands and their replies, traced from socket syscalls", &cols)

// cols are the columns of redis_events, in order.
var cols struct {
	protocols.ConnColumns
	ReqCmd  table.StringCol `col:"req_cmd" desc:"Command, upper case, with the subcommand of a container command (CLIENT SETNAME); PUSH PUB for a published message"`
	ReqArgs table.StringCol `col:"req_args" desc:"The command's arguments, as a JSON array of strings"`
	Resp    table.StringCol `col:"resp" desc:"Reply: a scalar's text (an error's message; a null is NULL in angle brackets), an aggregate as JSON; truncated"`
	Latency table.Int64Col  `col:"latency" sem:"ST_DURATION_NS" desc:"Time from the command's first byte to the reply's last; 0 for a published message"`
}

// emit writes a row.
func (c *conn) emit(cmd string, args, resp []byte, start, ts int64) {
	row := c.Row
	if row == nil {
		return
	}
	cols.Set(row, ts, c.Env.Conn, netip.AddrPort{})
	cols.ReqCmd.Set(row, cmd)
	cols.ReqArgs.SetBytes(row, args)
	cols.Resp.SetBytes(row, resp)
	cols.Latency.Set(row, max(ts-start, 0))
	row.End() // a refused row is counted by the table's writer
}
