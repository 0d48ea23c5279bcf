// Package stitch holds what the stitchers of the protocols whose server
// answers requests in the order they came (PostgreSQL, MySQL, Redis)
// share: the bounds they take from the parser configuration, their
// counters, which side wrote a segment, and the FIFO in which requests
// wait for their answers (a Stitcher, which a connection's state
// embeds). What answers a request, and what a lost sync costs, stays
// each protocol's own.
package stitch

import (
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Bounds returns the bytes of a request (cfg.MaxHeaderBytes, 16 KiB when
// unset) and of a response (cfg.MaxBodyBytes, 1 KiB when unset) that a
// stitcher keeps for a row.
func Bounds(cfg protocols.Config) (maxReq, maxResp int) {
	maxReq, maxResp = cfg.MaxHeaderBytes, cfg.MaxBodyBytes
	if maxReq <= 0 {
		maxReq = 16 << 10
	}
	if maxResp <= 0 {
		maxResp = 1024
	}
	return maxReq, maxResp
}

// MaxPending returns how many requests a connection keeps waiting:
// cfg.MaxPending (64 when unset), eight times as many when pipelined, for
// a protocol whose clients commonly send many requests before the first
// answer.
func MaxPending(cfg protocols.Config, pipelined bool) int {
	n := cfg.MaxPending
	if n <= 0 {
		n = 64
	}
	if pipelined {
		n *= 8
	}
	return n
}

// Stitcher is what every stitcher here starts its connection's state
// with (embedded): the parser's environment, the bounds of what it
// keeps, the row builder of its table and its queue of requests.
type Stitcher[R Request] struct {
	Env     protocols.Env
	MaxReq  int        // bytes of a request kept (Bounds)
	MaxResp int        // bytes of a response kept (Bounds)
	Row     *table.Row // the table's row builder; nil when Env gives none
	Reqs    Queue[R]
}

// New returns the Stitcher of a connection whose rows go to the table d.
func New[R Request](env protocols.Env, d *table.Decl) Stitcher[R] {
	s := Stitcher[R]{Env: env}
	s.MaxReq, s.MaxResp = Bounds(env.Cfg)
	if env.Row != nil {
		s.Row = env.Row(d)
	}
	return s
}

// Count adds n to the protocol's counter name; n == 0, or an Env
// without counters, counts nothing.
func (s *Stitcher[R]) Count(name string, n int64) {
	if s.Env.Count != nil && n != 0 {
		s.Env.Count(name, n)
	}
}

// FromClient reports whether bytes going dir were written by the client:
// egress when the connection is traced on the client's side, ingress on
// the server's. A connection whose role is unknown (or an Env without
// one) is taken as traced on the client.
func (s *Stitcher[R]) FromClient(dir protocols.Direction) bool {
	c := s.Env.Conn
	client := c == nil || c.Role != protocols.RoleServer
	return (dir == protocols.Egress) == client
}

// Pending implements protocols.Parser's Pending: the requests waiting.
func (s *Stitcher[R]) Pending() int { return s.Reqs.Len() }

// Overdue reports whether the oldest request has waited more than the
// request timeout at now; never when none waits or no timeout is set.
func (s *Stitcher[R]) Overdue(now int64) bool {
	t := s.Env.Cfg.RequestTimeout.Nanoseconds()
	return t > 0 && s.Reqs.Len() > 0 && now-s.Reqs.Head().StartTS() > t
}

// Skip hands a gap of n bytes going dir to the reader of that side,
// client or server, which reports whether it could skip them (a length
// said where its message ends). When it could not, the connection lost
// sync: Skip counts a gap_resyncs and reports true.
func (s *Stitcher[R]) Skip(dir protocols.Direction, n int, client, server func(n int) bool) (lost bool) {
	skip := server
	if s.FromClient(dir) {
		skip = client
	}
	if skip(n) {
		return false
	}
	s.Count("gap_resyncs", 1)
	return true
}

// Closed counts what a connection leaves when it closes: a message cut
// short (cut), and requests whose answers will not come (waiting of them
// would have made rows). It empties the queue.
func (s *Stitcher[R]) Closed(cut bool, waiting int) {
	if cut {
		s.Count("incomplete_at_close", 1)
	}
	s.Count("closed_before_response", int64(waiting))
	s.Reqs.Clear()
}

// Request is what a Queue holds: a request that knows when its first
// byte was seen.
type Request interface {
	StartTS() int64
}

// Queue is the FIFO of a connection's requests waiting for their
// answers, oldest first. The zero value is empty and ready.
type Queue[R Request] struct {
	items []R // the queue is items[head:]
	head  int
}

// Len returns the number of requests waiting.
func (q *Queue[R]) Len() int { return len(q.items) - q.head }

// Head returns the oldest request; the queue must not be empty.
func (q *Queue[R]) Head() R { return q.items[q.head] }

// All returns the requests, oldest first, valid until the queue changes.
func (q *Queue[R]) All() []R { return q.items[q.head:] }

// Push adds r last. When the slice is full but its front was popped, the
// requests slide down rather than the slice growing.
func (q *Queue[R]) Push(r R) {
	if q.head > 0 && len(q.items) == cap(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, r)
}

// Pop removes the oldest request and returns it; the queue must not be
// empty.
func (q *Queue[R]) Pop() R {
	r := q.items[q.head]
	var zero R
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return r
}

// Clear removes every request.
func (q *Queue[R]) Clear() {
	clear(q.items)
	q.items, q.head = q.items[:0], 0
}

// Older returns how many requests wait before the last one that began
// at or before ts, or -1 when none did. After lost bytes, an answer that
// begins at ts pairs with that last request: the older ones lost their
// answers.
func (q *Queue[R]) Older(ts int64) int {
	i := len(q.items) - 1
	for i >= q.head && q.items[i].StartTS() > ts {
		i--
	}
	if i < q.head {
		return -1
	}
	return i - q.head
}
