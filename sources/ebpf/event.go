package ebpf

import (
	"encoding/binary"
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
)

// Event types and layout of struct event in bpf/trace.c. The header is
// decoded by hand at fixed offsets (checked against the bpf2go type in
// tests) because binary.Read's reflection is too slow per event.
const (
	evData  = 1
	evOpen  = 2
	evClose = 3
	evExit  = 4

	eventHeaderSize = 112
)

type event struct {
	ts       uint64
	connID   uint64
	pos      uint64
	startNS  uint64
	wr, rd   uint64
	local    netip.AddrPort
	remote   netip.AddrPort
	family   uint16
	tgid     uint32
	fd       int32
	span     uint32
	typ      uint8
	dir      uint8
	role     uint8
	sockType uint8
	peerSet  bool
	data     []byte
}

// decodeAddr reads a struct addr at b: 16 address bytes, port, family.
func decodeAddr(b []byte) (netip.AddrPort, uint16) {
	var a [16]byte
	copy(a[:], b[:16])
	port := binary.LittleEndian.Uint16(b[16:])
	family := binary.LittleEndian.Uint16(b[18:])
	return conntrack.Addr(family, a, port), family
}

// decodeEvent decodes a raw ring buffer record. It returns false if the
// record is too short for its header or its declared data length.
func decodeEvent(b []byte, ev *event) bool {
	if len(b) < eventHeaderSize {
		return false
	}
	le := binary.LittleEndian
	ev.ts = le.Uint64(b[0:])
	ev.connID = le.Uint64(b[8:])
	ev.pos = le.Uint64(b[16:])
	ev.startNS = le.Uint64(b[24:])
	ev.wr = le.Uint64(b[32:])
	ev.rd = le.Uint64(b[40:])
	ev.local, ev.family = decodeAddr(b[48:])
	ev.remote, _ = decodeAddr(b[68:])
	ev.tgid = le.Uint32(b[88:])
	ev.fd = int32(le.Uint32(b[92:]))
	n := le.Uint32(b[96:])
	ev.span = le.Uint32(b[100:])
	ev.typ = b[104]
	ev.dir = b[105]
	ev.role = b[106]
	ev.sockType = b[107]
	ev.peerSet = b[108] != 0
	if uint64(n) > uint64(len(b)-eventHeaderSize) || ev.span < n {
		return false
	}
	ev.data = b[eventHeaderSize : eventHeaderSize+int(n)]
	return true
}
