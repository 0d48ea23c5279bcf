// Package kafka parses the Kafka protocol from the bytes of traced
// connections and stitches each request to its response into a
// kafka_events.beta row.
//
// Each direction is framed by the messages' int32 sizes (stitch.go). The
// message formats are data (apis.go: every field of every version of the
// API keys a produce/consume cycle uses, flexible versions included),
// compiled per key and version (schema.go) into programs that a
// streaming decoder (decode.go) runs over the bytes as they come,
// rendering JSON within a bound and summarising record sets without
// keeping them, so a message of any size costs a small, fixed state.
package kafka

import (
	"encoding/binary"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is Kafka.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "kafka" }

// ID implements protocols.Protocol: conn_stats.protocol 10, as in Pixie.
func (Protocol) ID() int64 { return 10 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// Infer implements protocols.Protocol. It recognises a client's request:
// a size, an API key this parser reads at one of its versions, a
// correlation id and a client id, then the body by the key's format: a
// whole request must decode exactly; one longer than the bytes at hand
// is judged on its first 512 bytes, and only with a printable client id
// (a response, seen as a request, mostly has an empty one). It is a
// request.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < 14 {
		return false, false
	}
	size := int(int32(binary.BigEndian.Uint32(data)))
	key, v := int16(binary.BigEndian.Uint16(data[4:])), int16(binary.BigEndian.Uint16(data[6:]))
	ps := apis[key]
	if size < 10 || size > maxRequest || ps == nil || v < 0 || v > ps.api.max {
		return false, false
	}
	n := int(int16(binary.BigEndian.Uint16(data[12:])))
	if n < -1 || 10+n > size || 14+n > len(data) {
		return false, false
	}
	for _, c := range data[14 : 14+max(n, 0)] {
		if c < 0x20 || c > 0x7e {
			return false, false
		}
	}
	whole := len(data) >= 4+size
	if !whole && (n <= 0 || len(data) < inferBytes) {
		return false, false
	}
	var d decoder
	d.reset(ps.req[v], size-8, inferBytes, false)
	d.feed(data[12:min(len(data), 4+size)])
	if d.failed || (whole && !d.done()) {
		return false, false
	}
	return true, true
}

// inferBytes is how much of a request longer than the bytes at hand
// inference wants (the tracer gathers up to 512 bytes of a stream).
const inferBytes = 512
