package query

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Errors of a query that did not run, or was stopped, for the server's
// sake rather than its own. Front ends map them to their wire forms
// (gRPC RESOURCE_EXHAUSTED and UNAVAILABLE, HTTP 503).
var (
	// ErrBusy is wrapped by the error of a query the Gate refused: the
	// server runs as many queries, or reserves as much memory, as it
	// may.
	ErrBusy = errors.New("server busy")
	// ErrShutdown is the error of a query refused or cancelled because
	// the server is shutting down.
	ErrShutdown = errors.New("server shutting down")
	// ErrNoAgents is wrapped by the error of a distributed query that
	// no agent answered.
	ErrNoAgents = errors.New("no agent answered")
	// ErrAgentMissing is wrapped by the error of an all-or-nothing
	// query that an agent did not answer.
	ErrAgentMissing = errors.New("an agent did not answer")
)

// Defaults of NewGate's zero arguments.
const (
	DefaultMaxQueries  = 8
	DefaultTotalMemory = 2 << 30
)

// Gate admits queries into a server: at most max at once, and only while
// the memory they may hold (each its Limits.QueryMemory) adds up to at
// most memory. It refuses the others at once with ErrBusy rather than
// queueing them, so that a client learns the server is full instead of
// waiting on it, and one client's burst of heavy queries cannot grow the
// server past its memory. Close cancels the running queries and refuses
// new ones. A nil *Gate admits everything.
type Gate struct {
	max    int
	memory int64
	ctx    context.Context // ends at Close
	close  context.CancelCauseFunc

	mu       sync.Mutex
	running  int
	reserved int64
}

// NewGate returns a gate of at most max queries holding at most memory
// bytes together. A zero argument takes its default (DefaultMaxQueries,
// DefaultTotalMemory); a negative one means no bound.
func NewGate(max int, memory int64) *Gate {
	if max == 0 {
		max = DefaultMaxQueries
	}
	if memory == 0 {
		memory = DefaultTotalMemory
	}
	g := &Gate{max: max, memory: memory}
	g.ctx, g.close = context.WithCancelCause(context.Background())
	return g
}

// Enter admits a query that may hold mem bytes. It returns the query's
// context, which Close cancels with ErrShutdown as its cause, and the
// function that lets the query out, to be called when it ends.
func (g *Gate) Enter(ctx context.Context, mem int64) (context.Context, func(), error) {
	if g == nil {
		return ctx, func() {}, nil
	}
	g.mu.Lock()
	switch {
	case g.ctx.Err() != nil:
		g.mu.Unlock()
		return ctx, nil, ErrShutdown
	case g.max > 0 && g.running >= g.max:
		g.mu.Unlock()
		return ctx, nil, fmt.Errorf("%w: it runs %d queries, its most (max-concurrent-queries); try again shortly", ErrBusy, g.max)
	case g.memory > 0 && g.reserved+mem > g.memory:
		free := g.memory - g.reserved
		g.mu.Unlock()
		return ctx, nil, fmt.Errorf("%w: the running queries may hold %d MiB of its %d MiB (total-query-memory), a query %d MiB more; try again shortly",
			ErrBusy, (g.memory-free)>>20, g.memory>>20, mem>>20)
	}
	g.running++
	g.reserved += mem
	g.mu.Unlock()
	qctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(g.ctx, func() { cancel(ErrShutdown) })
	var once sync.Once
	return qctx, func() {
		once.Do(func() {
			stop()
			cancel(nil)
			g.mu.Lock()
			g.running--
			g.reserved -= mem
			g.mu.Unlock()
		})
	}, nil
}

// Running returns the number of queries admitted and not yet let out,
// and the memory reserved for them.
func (g *Gate) Running() (int, int64) {
	if g == nil {
		return 0, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, g.reserved
}

// Close cancels every running query and refuses new ones, for a server
// that stops.
func (g *Gate) Close() {
	if g != nil {
		g.close(ErrShutdown)
	}
}
