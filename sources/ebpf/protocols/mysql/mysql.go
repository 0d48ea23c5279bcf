// Package mysql parses the MySQL client/server protocol (MySQL and
// MariaDB) from the bytes of traced connections and stitches each
// command to its response into a mysql_events row.
//
// Packets are framed incrementally on both sides (frame.go), payloads
// of 16 MiB and more reassembled across wire packets and kept only up to
// a bound. The stitcher (stitch.go) follows the connection phase (the
// server's handshake, the client's capabilities, authentication) and
// then reads each command's response by its form: OK, ERR, a result set
// (column definitions, rows, EOF or OK), a prepared statement's
// definitions. Prepared statements are remembered by id, so each execute
// shows its statement text and bound values.
package mysql

import (
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is MySQL (and MariaDB).
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "mysql" }

// ID implements protocols.Protocol: conn_stats.protocol 3, as in Pixie.
func (Protocol) ID() int64 { return 3 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// Infer implements protocols.Protocol. It recognises the server's
// handshake, the first packet of every connection: sequence 0, protocol
// version 10, a printable server version starting with a digit, and the
// zero filler after the first part of the authentication data, the whole
// packet in data. It is a response (the server speaks first).
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < 4+1+2+4+8+1+2 {
		return false, false
	}
	l := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	if data[3] != 0 || l < 1+2+4+8+1+2 || l > 1024 || 4+l > len(data) || data[4] != 0x0a {
		return false, false
	}
	p := data[5 : 4+l]
	v := 0
	for v < len(p) && p[v] != 0 {
		if p[v] < 0x20 || p[v] > 0x7e {
			return false, false
		}
		v++
	}
	if v == 0 || v > 64 || p[0] < '0' || p[0] > '9' || len(p) < v+1+4+8+1 || p[v+1+4+8] != 0 {
		return false, false
	}
	return true, false
}
