// Package nats parses the NATS client protocol, a text protocol of
// control lines (some followed by a payload), from the bytes of traced
// connections into nats_events.beta rows, one per command, as Pixie
// shows them.
//
// Each direction is framed by its own reader (parser.go): a control line
// up to its CRLF, and for PUB, HPUB, MSG and HMSG the payload whose size
// the line gives, kept up to a bound. The stitcher (stitch.go) writes a
// row per command and, on a connection whose CONNECT asked for verbose
// mode, pairs each of the client's CONNECT, PUB, HPUB, SUB and UNSUB with
// the +OK or -ERR the server answers it with.
package nats

import (
	"bytes"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is NATS.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "nats" }

// ID implements protocols.Protocol: conn_stats.protocol 8, as in Pixie.
func (Protocol) ID() int64 { return 8 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// Infer implements protocols.Protocol. It recognises what each side
// sends first, the server's INFO and the client's CONNECT, each followed
// by its JSON object; and, on a connection seen from its middle, a whole
// PUB, HPUB, SUB, MSG or HMSG control line whose fields are well formed
// (and the CRLF after the payload where the data holds it). Keywords
// must be upper case here, as every client sends them, though the
// parser takes any case. INFO, MSG and HMSG come from the server.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < 6 {
		return false, false
	}
	for _, p := range [...]struct {
		prefix  string
		request bool
	}{{"INFO", false}, {"CONNECT", true}} {
		if rest, ok := bytes.CutPrefix(data, []byte(p.prefix)); ok {
			rest = bytes.TrimLeft(rest, " \t")
			if len(rest) < len(data)-len(p.prefix) && len(rest) > 0 && rest[0] == '{' {
				return true, p.request
			}
			return false, false
		}
	}
	end := bytes.IndexByte(data, '\n')
	if end < 2 || data[end-1] != '\r' {
		return false, false
	}
	word, rest, ok := bytes.Cut(data[:end-1], []byte(" "))
	if !ok {
		return false, false
	}
	k := commandKind(word)
	switch k {
	case kPub, kHPub, kSub, kMsg, kHMsg:
	default:
		return false, false
	}
	if !bytes.Equal(word, []byte(kindNames[k])) {
		return false, false
	}
	var l line
	if !l.parse(k, rest) {
		return false, false
	}
	for _, f := range l.fields[:l.n] {
		for _, c := range f {
			if c <= ' ' || c >= 0x7f {
				return false, false
			}
		}
	}
	if k != kSub {
		if p := end + 1 + l.total; p+2 <= len(data) && (data[p] != '\r' || data[p+1] != '\n') {
			return false, false
		}
	}
	return true, k == kPub || k == kHPub || k == kSub
}
