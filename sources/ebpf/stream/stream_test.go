package stream

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

type rec struct {
	data strings.Builder
	gaps []int
}

func (r *rec) Data(seg protocols.Segment) { r.data.Write(seg.Data) }
func (r *rec) Gap(_ protocols.Direction, n int) {
	r.gaps = append(r.gaps, n)
	r.data.WriteString(strings.Repeat("_", n))
}

func add(s *Stream, r *rec, pos uint64, d string) {
	s.Add(pos, uint64(len(d)), 0, []byte(d), netip.AddrPort{}, r)
}

func TestInOrderReorderAndGaps(t *testing.T) {
	var s Stream
	r := &rec{}
	add(&s, r, 100, "abc") // starts mid-stream
	add(&s, r, 106, "ghi") // early: held
	add(&s, r, 103, "def") // fills the hole: both delivered
	if got := r.data.String(); got != "abcdefghi" || s.Pending() {
		t.Fatalf("got %q pending %v", got, s.Pending())
	}
	add(&s, r, 112, "mno") // 3 bytes lost before it
	s.Settle(r)
	if got := r.data.String(); got != "abcdefghi___mno" || len(r.gaps) != 1 || s.Lost != 3 {
		t.Fatalf("got %q gaps %v lost %d", got, r.gaps, s.Lost)
	}
	add(&s, r, 113, "nop") // overlap: only "p" is new
	if got := r.data.String(); got != "abcdefghi___mnop" || s.Dups != 2 {
		t.Fatalf("got %q dups %d", got, s.Dups)
	}
	// A piece that covers more than it carries: the rest is a gap.
	s.Add(116, 10, 0, []byte("qr"), netip.AddrPort{}, r)
	if got := r.data.String(); got != "abcdefghi___mnopqr________" || s.Next() != 126 {
		t.Fatalf("got %q next %d", got, s.Next())
	}
}

func TestPendingBounded(t *testing.T) {
	var s Stream
	r := &rec{}
	add(&s, r, 0, "a")
	for i := 0; i < 3*MaxPending; i++ {
		add(&s, r, uint64(10+2*i), "x")
	}
	if len(s.pending) > MaxPending {
		t.Fatalf("%d pieces held", len(s.pending))
	}
}

// timedRec is a sink that takes the time of gaps.
type timedRec struct {
	rec
	gapTS []int64
}

func (r *timedRec) GapAt(dir protocols.Direction, n int, ts int64) {
	r.gapTS = append(r.gapTS, ts)
	r.Gap(dir, n)
}

// A piece whose bytes were not copied (a skipped body) hands its time to
// a sink that wants it; a hole found between pieces has none.
func TestGapAt(t *testing.T) {
	var s Stream
	r := &timedRec{}
	s.Add(0, 3, 10, []byte("abc"), netip.AddrPort{}, r)
	s.Add(3, 100, 20, nil, netip.AddrPort{}, r) // span only
	s.Add(103, 7, 30, []byte("xyz"), netip.AddrPort{}, r)
	s.Add(120, 1, 40, []byte("!"), netip.AddrPort{}, r) // 10 bytes lost before
	s.Settle(r)
	if len(r.gapTS) != 2 || r.gapTS[0] != 20 || r.gapTS[1] != 30 {
		t.Errorf("timed gaps at %v, want [20 30]", r.gapTS)
	}
	if want := []int{100, 4, 10}; len(r.gaps) != 3 || r.gaps[0] != want[0] || r.gaps[1] != want[1] || r.gaps[2] != want[2] {
		t.Errorf("gaps %v, want %v", r.gaps, want)
	}
}
