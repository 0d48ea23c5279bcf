// Package amqp parses AMQP 0-9-1 (RabbitMQ's protocol) from the bytes of
// traced connections into amqp_events rows: one per synchronous method
// with its answer, and one per asynchronous method (publish, deliver,
// ack, …), with its content header and body.
//
// Each direction is framed by its own reader (frame.go): frames of a
// type, a channel and a size, the protocol header a client starts with.
// Method arguments, field tables and content properties are decoded into
// JSON (decode.go) by the method table (methods.go); the stitcher
// (stitch.go) gathers content frames into their method and pairs methods
// with their answers per channel.
package amqp

import (
	"bytes"
	"encoding/binary"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is AMQP 0-9-1.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "amqp" }

// ID implements protocols.Protocol: conn_stats.protocol 12, as in Pixie.
func (Protocol) ID() int64 { return 12 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// Infer implements protocols.Protocol. It recognises what each side
// sends first: the client's protocol header for 0-9-1, and the server's
// connection.start for 0-9 (its first 13 bytes: a method frame on
// channel 0, class 10, method 10, version 0 9). On a connection seen
// from its middle it takes a whole method frame (its end octet where the
// size says) of a known method that only one side sends, which tells
// the side.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream {
		return false, false
	}
	if bytes.HasPrefix(data, protocolHeader) {
		return true, true
	}
	if len(data) < 13 || data[0] != frameMethod {
		return false, false
	}
	size := int(binary.BigEndian.Uint32(data[3:7]))
	class, id := binary.BigEndian.Uint16(data[7:9]), binary.BigEndian.Uint16(data[9:11])
	if class == 10 && id == 10 && data[1] == 0 && data[2] == 0 && data[11] == 0 && data[12] == 9 && size > 6 && size < 1<<16 {
		return true, false
	}
	if size < 4 || 8+size > len(data) || data[7+size] != frameEnd {
		return false, false
	}
	d := methods[key(class, id)]
	if d == nil || d.from == byBoth {
		return false, false
	}
	return true, d.from == byClient
}
