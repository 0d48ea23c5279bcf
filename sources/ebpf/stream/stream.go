// Package stream is the tracer's reassembly stage: it puts the captured
// pieces of one direction of a connection back in order and hands them to
// the next stage (protocol inference, then the protocol's parser). Every piece carries its offset in the stream (the BPF side
// counts bytes per connection and direction), so missing bytes are known
// exactly: they become gaps of a known size, and out-of-order pieces (two
// CPUs submitting for one socket) are held briefly and released in order.
package stream

import (
	"net/netip"
	"sort"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// Sink receives the streams of a connection in order.
type Sink interface {
	// Data is called with bytes that follow everything delivered so far
	// in seg.Dir. seg.Data is only valid during the call.
	Data(seg protocols.Segment)
	// Gap is called for n bytes of dir that were not captured.
	Gap(dir protocols.Direction, n int)
}

// MaxPending bounds the out-of-order pieces held per stream; past it the
// oldest hole is declared lost.
const MaxPending = 64

type piece struct {
	pos    uint64
	span   uint64
	ts     int64
	data   []byte
	remote netip.AddrPort
}

// Stream orders one direction of one connection. The zero value is ready;
// the first piece sets the starting offset, since tracing may begin in the
// middle of a connection.
type Stream struct {
	// Dir is the direction the stream carries, given to the sink.
	Dir     protocols.Direction
	next    uint64
	started bool
	pending []piece
	// Lost counts bytes declared gaps; Dups counts bytes seen twice.
	Lost, Dups uint64
}

// Next returns the offset of the next byte expected.
func (s *Stream) Next() uint64 { return s.next }

// Add takes the piece at pos: len(data) captured bytes covering span bytes
// of the stream (span > len(data) when the rest was not copied).
func (s *Stream) Add(pos, span uint64, ts int64, data []byte, remote netip.AddrPort, sink Sink) {
	if !s.started {
		s.started = true
		s.next = pos
	}
	switch {
	case pos == s.next:
		s.deliver(piece{pos: pos, span: span, ts: ts, data: data, remote: remote}, sink)
		s.drain(sink)
	case pos < s.next:
		// Overlap with bytes already delivered: deliver only the new tail.
		end := pos + span
		if end <= s.next {
			s.Dups += span
			return
		}
		skip := s.next - pos
		s.Dups += skip
		p := piece{pos: s.next, span: end - s.next, ts: ts, remote: remote}
		if skip < uint64(len(data)) {
			p.data = data[skip:]
		}
		s.deliver(p, sink)
		s.drain(sink)
	default:
		if len(s.pending) >= MaxPending {
			s.Settle(sink)
		}
		cp := make([]byte, len(data))
		copy(cp, data)
		s.pending = append(s.pending, piece{pos: pos, span: span, ts: ts, data: cp, remote: remote})
		sort.Slice(s.pending, func(i, j int) bool { return s.pending[i].pos < s.pending[j].pos })
	}
}

// Settle declares the holes before held pieces lost and delivers those
// pieces. The tracer calls it after each batch read from the ring buffer,
// once no earlier piece can still be on its way.
func (s *Stream) Settle(sink Sink) {
	for len(s.pending) > 0 {
		p := s.pending[0]
		if p.pos > s.next {
			n := p.pos - s.next
			s.Lost += n
			sink.Gap(s.Dir, int(n))
			s.next = p.pos
		}
		s.drain(sink)
	}
}

// OldestTS returns the earliest time of the pieces held, and false if none
// is held.
func (s *Stream) OldestTS() (int64, bool) {
	if len(s.pending) == 0 {
		return 0, false
	}
	ts := s.pending[0].ts
	for _, p := range s.pending[1:] {
		ts = min(ts, p.ts)
	}
	return ts, true
}

// Pending reports whether pieces are held.
func (s *Stream) Pending() bool { return len(s.pending) > 0 }

func (s *Stream) deliver(p piece, sink Sink) {
	if len(p.data) > 0 {
		sink.Data(protocols.Segment{Dir: s.Dir, TS: p.ts, Data: p.data, Remote: p.remote})
	}
	if p.span > uint64(len(p.data)) {
		n := p.span - uint64(len(p.data))
		s.Lost += n
		if g, ok := sink.(protocols.GapTimer); ok {
			g.GapAt(s.Dir, int(n), p.ts)
		} else {
			sink.Gap(s.Dir, int(n))
		}
	}
	s.next = p.pos + p.span
}

// drain delivers held pieces that have become contiguous.
func (s *Stream) drain(sink Sink) {
	i := 0
	for i < len(s.pending) {
		p := s.pending[i]
		if p.pos > s.next {
			break
		}
		i++
		end := p.pos + p.span
		if end <= s.next {
			s.Dups += p.span
			continue
		}
		if skip := s.next - p.pos; skip > 0 {
			s.Dups += skip
			if skip < uint64(len(p.data)) {
				p.data = p.data[skip:]
			} else {
				p.data = nil
			}
			p.pos, p.span = s.next, end-s.next
		}
		s.deliver(p, sink)
	}
	if i > 0 {
		s.pending = append(s.pending[:0], s.pending[i:]...)
	}
}
