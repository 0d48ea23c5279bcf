// Package redis parses RESP2 and RESP3, the Redis protocol, from the
// bytes of traced connections and stitches each command to its reply
// into a redis_events row; messages a subscriber receives make rows of
// their own.
//
// The decoder (resp.go) reads each direction incrementally, keeping a
// bounded prefix of each bulk string, and hands the values to a
// renderer (render.go) that writes the command's name and arguments, or
// the reply's text, as it goes.
package redis

import (
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is Redis.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "redis" }

// ID implements protocols.Protocol: conn_stats.protocol 7, as in Pixie.
func (Protocol) ID() int64 { return 7 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// Infer implements protocols.Protocol. It recognises a client's command:
// an array of bulk strings ("*2\r\n$3\r\nGET\r\n…") whose count is
// plausible and whose first element, a command name of letters (and
// '_', '-', '|'), is there whole. It is a request.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < 8 || data[0] != '*' {
		return false, false
	}
	n, rest, ok := respLen(data[1:])
	if !ok || n < 1 || n > 1<<20 || len(rest) < 2 || rest[0] != '$' {
		return false, false
	}
	l, rest, ok := respLen(rest[1:])
	if !ok || l < 1 || l > 32 || len(rest) < l+2 || rest[l] != '\r' || rest[l+1] != '\n' {
		return false, false
	}
	for _, c := range rest[:l] {
		if !('a' <= c|0x20 && c|0x20 <= 'z') && c != '_' && c != '-' && c != '|' {
			return false, false
		}
	}
	return true, true
}

// respLen reads a decimal count and its CRLF.
func respLen(b []byte) (int, []byte, bool) {
	n, i := 0, 0
	for i < len(b) && i < 8 && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i == 0 || i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
		return 0, nil, false
	}
	return n, b[i+2:], true
}
