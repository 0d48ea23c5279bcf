// Package http2 parses HTTP/2 from the bytes of traced connections (h2c
// with prior knowledge, and h2 once TLS plaintext reaches the parser),
// gRPC included, and writes one http_events row per stream.
//
// Each direction of a connection is a sequence of frames. Its header
// blocks (HEADERS, PUSH_PROMISE, CONTINUATION) go through one HPACK
// decoder (golang.org/x/net/http2/hpack), whose dynamic table is shared
// by every stream sent that way; DATA goes to its stream's body. Streams
// are multiplexed: a stream becomes a row when both its request and its
// response have ended (END_STREAM), or when it is reset after its
// response headers.
//
// Lost bytes: inside a DATA frame they are skipped (the body is marked
// lost, its size kept); anywhere else the frame boundaries and the
// dynamic table are unknown. The parser then waits for a segment that
// starts with well-formed frames, and decodes with a fresh table (see
// decoder): a header block that refers to entries it cannot know makes
// its stream undecodable, counted and never written, so a header is
// decoded right or not at all. A connection first seen mid-stream starts
// that way.
package http2

import (
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is HTTP/2.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "http2" }

// ID implements protocols.Protocol: conn_stats.protocol 2, as Pixie's.
func (Protocol) ID() int64 { return 2 }

// Tables implements protocols.Protocol: HTTP/2 rows go to http_events.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{http.Table} }

// maxInferFrame bounds the frames inference takes: the default
// SETTINGS_MAX_FRAME_SIZE, which header frames stay within.
const maxInferFrame = 16384

// Infer implements protocols.Protocol. A connection seen from its start
// is recognised by the client's preface. One seen mid-stream is
// recognised only by frames: data must begin with a chain of strict frame
// headers holding a HEADERS frame whose first field names a request
// pseudo-header or :status through the static table (which tells who is
// the client), or a PUSH_PROMISE (sent by servers).
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < frameHeaderLen {
		return false, false
	}
	if len(data) >= len(preface) && string(data[:len(preface)]) == preface {
		return true, true
	}
	if string(data) == preface[:min(len(data), len(preface))] {
		return false, false // the preface, cut short
	}
	known, bad := false, false
	_, ok := chain(data, maxInferFrame, func(h frameHeader, payload []byte) {
		if known || bad {
			return
		}
		switch h.typ {
		case frameHeaders:
			req, k := pseudoRole(blockStart(h, payload))
			if k && req && h.stream%2 == 0 {
				bad = true // clients open odd streams only
				return
			}
			known, request = k, req
		case framePushPromise:
			known, request = true, false
		}
	})
	return ok && known && !bad, request
}

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }
