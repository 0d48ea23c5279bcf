package ebpf

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// The layout of struct event in bpf/trace.c. The header is decoded by hand
// at fixed offsets (checked against the bpf2go type in tests) because
// binary.Read's reflection is too slow per event. Its type field numbers
// the kinds as conntrack.Kind does.
const eventHeaderSize = 112

// decodeAddr reads a struct addr at b: 16 address bytes, port, family.
func decodeAddr(b []byte) (netip.AddrPort, uint16) {
	var a [16]byte
	copy(a[:], b[:16])
	port := binary.LittleEndian.Uint16(b[16:])
	family := binary.LittleEndian.Uint16(b[18:])
	return conntrack.Addr(family, a, port), family
}

// decodeEvent decodes a raw ring buffer record into ev, converting its
// time with monoOff. It returns false if the record is too short for its
// header or its declared data length, or of no known kind. ev.Data points
// into b.
func decodeEvent(b []byte, ev *conntrack.Event, monoOff int64) bool {
	if len(b) < eventHeaderSize {
		return false
	}
	le := binary.LittleEndian
	ev.TS = int64(le.Uint64(b[0:])) + monoOff
	ev.ConnID = le.Uint64(b[8:])
	ev.Pos = le.Uint64(b[16:])
	ev.StartNS = le.Uint64(b[24:])
	ev.Sent = le.Uint64(b[32:])
	ev.Recv = le.Uint64(b[40:])
	ev.Local, ev.Family = decodeAddr(b[48:])
	ev.Remote, _ = decodeAddr(b[68:])
	ev.TGID = le.Uint32(b[88:])
	ev.FD = int32(le.Uint32(b[92:]))
	n := le.Uint32(b[96:])
	ev.Span = le.Uint32(b[100:])
	ev.Kind = conntrack.Kind(b[104])
	ev.Dir = protocols.Direction(b[105] & 1)
	ev.Role = protocols.Role(b[106])
	ev.Stream = b[107] == unix.SOCK_STREAM
	ev.PeerSet = b[108] != 0
	ev.TLS = conntrack.TLSKind(b[109])
	if uint64(n) > uint64(len(b)-eventHeaderSize) || ev.Span < n {
		return false
	}
	if ev.Kind < conntrack.Data || ev.Kind > conntrack.Exit || ev.TLS > conntrack.TLSCipher {
		return false
	}
	ev.Data = b[eventHeaderSize : eventHeaderSize+int(n)]
	return true
}
