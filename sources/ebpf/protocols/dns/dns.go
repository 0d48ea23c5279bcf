// Package dns parses DNS queries and answers carried in UDP datagrams and
// pairs them by transaction id into dns_events rows.
package dns

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is DNS over UDP.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "dns" }

// ID implements protocols.Protocol: conn_stats.protocol 6.
func (Protocol) ID() int64 { return 6 }

// KeepClientSide implements protocols.ClientSideKeeper: DNS servers are
// mostly outside what pxq traces, and scripts read queries from their
// clients.
func (Protocol) KeepClientSide() bool { return true }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// Infer implements protocols.Protocol: a datagram that parses completely as
// a DNS message with at least one question, or on a stream (DNS over TCP)
// such a message after its 2-byte length.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if stream {
		if len(data) < 2+12 {
			return false, false
		}
		n := int(binary.BigEndian.Uint16(data))
		if n < 12 || len(data) < 2+n {
			return false, false
		}
		data = data[2 : 2+n]
	}
	m, err := Parse(data)
	if err != nil || len(m.Questions) == 0 {
		return false, false
	}
	return true, !m.Header.QR
}

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser {
	return &conn{env: env, row: env.Row(Table), pending: map[pendingKey]*query{}}
}

// Header is a DNS message header.
type Header struct {
	TxID       uint16 `json:"txid"`
	QR         bool   `json:"qr"`
	Opcode     int    `json:"opcode"`
	AA         bool   `json:"aa"`
	TC         bool   `json:"tc"`
	RD         bool   `json:"rd"`
	RA         bool   `json:"ra"`
	AD         bool   `json:"ad"`
	CD         bool   `json:"cd"`
	Rcode      int    `json:"rcode"`
	NumQueries int    `json:"num_queries"`
	NumAnswers int    `json:"num_answers"`
	NumAuth    int    `json:"num_auth"`
	NumAddl    int    `json:"num_addl"`
}

// Question is one entry of the question section.
type Question struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Record is one answer record.
type Record struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Addr  string `json:"addr,omitempty"`
	CName string `json:"cname,omitempty"`
}

// Message is a parsed DNS message.
type Message struct {
	Header    Header
	Questions []Question
	Answers   []Record
}

var errShort = errors.New("dns: message too short")

var typeNames = map[uint16]string{1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 65: "HTTPS", 255: "ANY"}

func typeName(t uint16) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// Parse parses one DNS message. Authority and additional records are
// counted in the header but not decoded.
func Parse(b []byte) (*Message, error) {
	if len(b) < 12 {
		return nil, errShort
	}
	be := binary.BigEndian
	flags := be.Uint16(b[2:])
	h := Header{
		TxID: be.Uint16(b[0:]), QR: flags&0x8000 != 0, Opcode: int(flags>>11) & 0xf,
		AA: flags&0x0400 != 0, TC: flags&0x0200 != 0, RD: flags&0x0100 != 0, RA: flags&0x0080 != 0,
		AD: flags&0x0020 != 0, CD: flags&0x0010 != 0, Rcode: int(flags & 0xf),
		NumQueries: int(be.Uint16(b[4:])), NumAnswers: int(be.Uint16(b[6:])),
		NumAuth: int(be.Uint16(b[8:])), NumAddl: int(be.Uint16(b[10:])),
	}
	if h.Opcode > 5 || h.NumQueries > 16 {
		return nil, errors.New("dns: implausible header")
	}
	m := &Message{Header: h}
	off := 12
	for i := 0; i < h.NumQueries; i++ {
		name, n, err := readName(b, off)
		if err != nil {
			return nil, err
		}
		off = n
		if off+4 > len(b) {
			return nil, errShort
		}
		m.Questions = append(m.Questions, Question{Name: name, Type: typeName(be.Uint16(b[off:]))})
		off += 4
	}
	for i := 0; i < h.NumAnswers; i++ {
		name, n, err := readName(b, off)
		if err != nil {
			return nil, err
		}
		off = n
		if off+10 > len(b) {
			return nil, errShort
		}
		typ := be.Uint16(b[off:])
		rdlen := int(be.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			return nil, errShort
		}
		rd := b[off : off+rdlen]
		r := Record{Name: name, Type: typeName(typ)}
		switch {
		case typ == 1 && rdlen == 4:
			r.Addr = netip.AddrFrom4([4]byte(rd)).String()
		case typ == 28 && rdlen == 16:
			r.Addr = netip.AddrFrom16([16]byte(rd)).String()
		case typ == 5:
			if cn, _, err := readName(b, off); err == nil {
				r.CName = cn
			}
		}
		m.Answers = append(m.Answers, r)
		off += rdlen
	}
	return m, nil
}

// readName reads a possibly compressed name at off and returns it and the
// offset after it.
func readName(b []byte, off int) (string, int, error) {
	var labels []string
	end := -1
	for jumps := 0; ; {
		if off >= len(b) {
			return "", 0, errShort
		}
		l := int(b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return strings.Join(labels, "."), end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return "", 0, errShort
			}
			if end < 0 {
				end = off + 2
			}
			jumps++
			if jumps > 16 {
				return "", 0, errors.New("dns: compression loop")
			}
			off = int(binary.BigEndian.Uint16(b[off:]) & 0x3fff)
		case l&0xc0 != 0:
			return "", 0, errors.New("dns: bad label")
		default:
			if off+1+l > len(b) {
				return "", 0, errShort
			}
			labels = append(labels, string(b[off+1:off+1+l]))
			if len(labels) > 127 {
				return "", 0, errors.New("dns: name too long")
			}
			off += 1 + l
		}
	}
}

// maxPending bounds the unanswered queries kept per socket.
const maxPending = 256

type pendingKey struct {
	txid uint16
	peer netip.AddrPort
}

type query struct {
	ts     int64
	msg    *Message
	remote netip.AddrPort
}

// conn pairs the queries and answers of one socket. An unconnected server
// socket talks to many peers, so a query is keyed by id and peer.
type conn struct {
	env     protocols.Env
	row     *table.Row // dns_events
	pending map[pendingKey]*query
	// buf holds, per direction, the bytes of a DNS-over-TCP stream not
	// yet cut into messages.
	buf [2][]byte
}

// maxTCPBuffer bounds what a stream direction may hold: one message of
// the largest size a 2-byte length allows, plus its length.
const maxTCPBuffer = 2 + 65535

func (c *conn) Data(seg protocols.Segment) {
	if !c.env.Conn.Stream {
		c.message(seg)
		return
	}
	// DNS over TCP: messages follow their 2-byte big-endian length.
	d := int(seg.Dir) & 1
	b := append(c.buf[d], seg.Data...)
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			break
		}
		m := seg
		m.Data = b[2 : 2+n]
		c.message(m)
		b = b[2+n:]
	}
	if len(b) > maxTCPBuffer {
		c.env.Count("parse_errors", 1)
		b = nil
	}
	c.buf[d] = append(c.buf[d][:0], b...)
}

// message handles one DNS message.
func (c *conn) message(seg protocols.Segment) {
	m, err := Parse(seg.Data)
	if err != nil {
		c.env.Count("parse_errors", 1)
		return
	}
	remote := seg.Remote
	if !remote.IsValid() {
		remote = c.env.Conn.Remote
	}
	k := pendingKey{m.Header.TxID, remote}
	// The client sends queries; a server receives them.
	if m.Header.QR {
		q := c.pending[k]
		if q == nil {
			c.env.Count("unmatched_responses", 1)
			return
		}
		delete(c.pending, k)
		c.emit(q, m, seg.TS)
		return
	}
	if len(c.pending) >= maxPending {
		c.env.Count("requests_dropped_pending_full", 1)
		return
	}
	c.pending[k] = &query{ts: seg.TS, msg: m, remote: remote}
}

func nonNil(q []Question) []Question {
	if q == nil {
		return []Question{}
	}
	return q
}

func nonNilR(r []Record) []Record {
	if r == nil {
		return []Record{}
	}
	return r
}

// Gap drops a stream direction's partial message: what follows a gap
// cannot be framed.
func (c *conn) Gap(dir protocols.Direction, n int) { c.buf[int(dir)&1] = nil }

func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	for k, q := range c.pending {
		if timeout > 0 && now-q.ts > timeout {
			delete(c.pending, k)
			c.env.Count("requests_timed_out", 1)
		}
	}
}

func (c *conn) Close(now int64) {
	if len(c.pending) > 0 {
		c.env.Count("closed_before_response", int64(len(c.pending)))
		c.pending = map[pendingKey]*query{}
	}
}

func (c *conn) Pending() int { return len(c.pending) }
