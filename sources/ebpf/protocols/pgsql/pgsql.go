// Package pgsql parses the PostgreSQL frontend/backend protocol (version
// 3) from the bytes of traced connections and stitches each request
// message to the backend's answer into a pgsql_events row.
//
// Both directions are framed incrementally (frame.go): a message is kept
// up to a bound and the rest of it is skipped, so a connection costs a
// bounded buffer however large its rows or COPY data. The stitcher
// (stitch.go) queues the client's messages and reads the server's answers
// in order, carrying prepared statements from Parse to Bind to Execute.
package pgsql

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is PostgreSQL.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "pgsql" }

// ID implements protocols.Protocol: conn_stats.protocol 5, as in Pixie.
func (Protocol) ID() int64 { return 5 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// Infer implements protocols.Protocol. It recognises what a client sends
// first: a StartupMessage (protocol 3, with its user parameter), an
// SSLRequest, GSSENCRequest or CancelRequest; or, on a connection seen
// mid-stream, a whole Query message with text. Every case is a request.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < 8 {
		return false, false
	}
	if data[0] == 0 {
		return inferUntagged(data), true
	}
	if data[0] == 'Q' {
		return inferQuery(data), true
	}
	return false, false
}

func inferUntagged(data []byte) bool {
	l := int(binary.BigEndian.Uint32(data))
	code := binary.BigEndian.Uint32(data[4:])
	switch {
	case code == codeSSL || code == codeGSS:
		return l == 8 && len(data) == 8
	case code == codeCancel:
		return l == 16 && len(data) == 16
	case code != 3<<16:
		return false
	}
	if l < 8 || l > maxStartupLen || len(data) < min(l, 256) {
		return false
	}
	// Parameters: name and value strings, up to an empty name; "user"
	// is required. A message longer than the data (the inference probe
	// is bounded) is judged on what is there.
	complete := len(data) >= l
	r := reader{b: data[8:min(l, len(data))]}
	user := false
	for {
		name := r.cstring()
		if r.bad {
			return !complete && user
		}
		if len(name) == 0 {
			return complete && user && len(r.b) == 0
		}
		value := r.cstring()
		if !printable(name) || !utf8.Valid(value) {
			return false
		}
		if string(name) == "user" {
			user = true
		}
		if r.bad {
			return !complete && user
		}
	}
}

// inferQuery recognises a whole Query message: a length that the data
// holds exactly or is followed by another message, and text that starts
// with a letter, has no NUL but its last byte and is valid UTF-8.
func inferQuery(data []byte) bool {
	l := int(binary.BigEndian.Uint32(data[1:5]))
	if l < 6 || 1+l > len(data) {
		return false
	}
	text := data[5 : 1+l]
	if text[len(text)-1] != 0 {
		return false
	}
	text = text[:len(text)-1]
	i := 0
	for i < len(text) && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r' || text[i] == '(') {
		i++
	}
	if i == len(text) || !(text[i]|0x20 >= 'a' && text[i]|0x20 <= 'z') {
		return false
	}
	for _, c := range text {
		if c == 0 {
			return false
		}
	}
	if !utf8.Valid(text) {
		return false
	}
	rest := data[1+l:]
	return len(rest) == 0 || frontendTags[rest[0]]
}

// printable reports whether b is printable ASCII.
func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
