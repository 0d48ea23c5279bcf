package stitch

import (
	"slices"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

type req struct{ start int64 }

func (r *req) StartTS() int64 { return r.start }

func starts(rs []*req) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.start)
	}
	return out
}

// TestQueue pushes and pops in turns: the requests come out in order,
// and a queue whose front was popped slides down rather than growing.
func TestQueue(t *testing.T) {
	var q Queue[*req]
	for i := range 4 {
		q.Push(&req{int64(i)})
	}
	full := cap(q.items)
	for i := 4; i < 100; i++ {
		if got := q.Pop().start; got != int64(i-4) {
			t.Fatalf("pop %d: got %d", i-4, got)
		}
		q.Push(&req{int64(i)})
		if q.Len() != 4 || q.Head().start != int64(i-3) {
			t.Fatalf("after push %d: len %d head %d", i, q.Len(), q.Head().start)
		}
	}
	if cap(q.items) > full {
		t.Errorf("the queue of 4 grew to %d from %d", cap(q.items), full)
	}
	if got := starts(q.All()); !slices.Equal(got, []int64{96, 97, 98, 99}) {
		t.Errorf("All = %v", got)
	}
	q.Clear()
	if q.Len() != 0 || len(q.All()) != 0 {
		t.Errorf("after Clear: len %d", q.Len())
	}
}

// TestOlder: an answer that begins at ts pairs with the last request
// that began by then.
func TestOlder(t *testing.T) {
	var q Queue[*req]
	q.Push(&req{1}) // popped: not counted
	for _, s := range []int64{10, 20, 30} {
		q.Push(&req{s})
	}
	q.Pop()
	for _, c := range []struct{ ts, want int64 }{{5, -1}, {10, 0}, {25, 1}, {30, 2}, {99, 2}} {
		if got := q.Older(c.ts); int64(got) != c.want {
			t.Errorf("Older(%d) = %d, want %d", c.ts, got, c.want)
		}
	}
}

func newStitcher(role protocols.Role, timeout time.Duration) (*Stitcher[*req], map[string]int64) {
	counts := map[string]int64{}
	s := New[*req](protocols.Env{
		Conn:  &protocols.Conn{Role: role},
		Cfg:   protocols.Config{RequestTimeout: timeout},
		Count: func(name string, n int64) { counts[name] += n },
	}, nil)
	return &s, counts
}

func TestBounds(t *testing.T) {
	s, _ := newStitcher(protocols.RoleClient, 0)
	if s.MaxReq != 16<<10 || s.MaxResp != 1024 || s.Row != nil {
		t.Errorf("defaults: %d %d %v", s.MaxReq, s.MaxResp, s.Row)
	}
	if req, resp := Bounds(protocols.Config{MaxHeaderBytes: 100, MaxBodyBytes: 7}); req != 100 || resp != 7 {
		t.Errorf("Bounds = %d, %d", req, resp)
	}
	for _, c := range []struct {
		cfg       int
		pipelined bool
		want      int
	}{{0, false, 64}, {0, true, 512}, {-1, true, 512}, {10, false, 10}, {10, true, 80}} {
		if got := MaxPending(protocols.Config{MaxPending: c.cfg}, c.pipelined); got != c.want {
			t.Errorf("MaxPending(%d, %v) = %d, want %d", c.cfg, c.pipelined, got, c.want)
		}
	}
}

// TestFromClient: the client writes egress on its own side, ingress on
// the server's; an unknown role is taken as the client's.
func TestFromClient(t *testing.T) {
	for _, c := range []struct {
		role protocols.Role
		dir  protocols.Direction
		want bool
	}{
		{protocols.RoleClient, protocols.Egress, true},
		{protocols.RoleClient, protocols.Ingress, false},
		{protocols.RoleServer, protocols.Egress, false},
		{protocols.RoleServer, protocols.Ingress, true},
		{protocols.RoleUnknown, protocols.Egress, true},
	} {
		s, _ := newStitcher(c.role, 0)
		if got := s.FromClient(c.dir); got != c.want {
			t.Errorf("role %d %v: %v", c.role, c.dir, got)
		}
	}
	if !(&Stitcher[*req]{}).FromClient(protocols.Egress) {
		t.Error("no Conn: egress is not the client's")
	}
}

func TestOverdueSkipClosed(t *testing.T) {
	s, counts := newStitcher(protocols.RoleServer, time.Second)
	if s.Overdue(1 << 40) {
		t.Error("an empty queue is overdue")
	}
	s.Reqs.Push(&req{1000})
	if s.Overdue(1000+int64(time.Second)) || !s.Overdue(1001+int64(time.Second)) {
		t.Error("overdue at the wrong time")
	}
	off, _ := newStitcher(protocols.RoleServer, 0)
	off.Reqs.Push(&req{0})
	if off.Overdue(1 << 62) {
		t.Error("overdue without a timeout")
	}

	var skipped []string
	skip := func(side string, ok bool) func(int) bool {
		return func(n int) bool { skipped = append(skipped, side); return ok }
	}
	// Traced on the server: ingress is the client's.
	if s.Skip(protocols.Ingress, 5, skip("client", true), skip("server", false)) {
		t.Error("a skipped gap lost sync")
	}
	if !s.Skip(protocols.Egress, 5, skip("client", true), skip("server", false)) {
		t.Error("a gap the server's reader could not skip did not lose sync")
	}
	if !slices.Equal(skipped, []string{"client", "server"}) || counts["gap_resyncs"] != 1 {
		t.Errorf("skipped %v, counters %v", skipped, counts)
	}

	s.Reqs.Push(&req{2000})
	s.Closed(true, 1)
	s.Count("never", 0)
	if s.Pending() != 0 || counts["incomplete_at_close"] != 1 || counts["closed_before_response"] != 1 || len(counts) != 3 {
		t.Errorf("after Closed: pending %d, counters %v", s.Pending(), counts)
	}
}
