package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/api/arrowipc"
	"github.com/pxq-dev/pxq/api/planpb"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/query"
)

// ErrAgentMissing is wrapped by the error of an all-or-nothing query
// that an agent did not answer.
var ErrAgentMissing = query.ErrAgentMissing

// Distributed is true: the broker runs node fragments on its agents.
func (b *Broker) Distributed() bool { return true }

// Execute runs c's node fragment on the agents and its merge fragment
// here, and streams the output tables to out (query.Backend). Without a
// deadline on ctx the query gets Config.QueryTimeout.
func (b *Broker) Execute(ctx context.Context, c *query.Compiled, out exec.Output, res *query.Result) error {
	if c.Split == nil {
		return fmt.Errorf("broker: query %s: the plan is not split into fragments", c.ID)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.QueryTimeout)
		defer cancel()
	}
	cat, err := b.loadCatalog(ctx)
	if err != nil {
		return err
	}
	frag, err := planner.ToProto(c.Split.Node)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	q := newRun(ctx, b, cat, c, frag)
	for _, w := range cat.warnings {
		q.warn("", w)
	}
	if c.AllOrNothing && len(q.missing) > 0 {
		q.stop()
		q.report(res)
		return fmt.Errorf("broker: %w: %s", ErrAgentMissing, strings.Join(q.warnings, "; "))
	}
	err = exec.Execute(q.ctx, c.Split.Merge, b.execOptions(c, q), out)
	q.stop()
	q.report(res)
	if cause := context.Cause(q.ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		err = cause
	}
	if err != nil {
		return err
	}
	for _, w := range q.warnings {
		b.cfg.Log.Warn("partial result", "query", c.ID, "warning", w)
	}
	return nil
}

// run is one distributed execution: the merge fragment's bridge to
// the agents' streams.
type run struct {
	b      *Broker
	ctx    context.Context
	cancel context.CancelCauseFunc
	// agentCtx ends a little before ctx, so that the merge can finish
	// with the agents that answered in time.
	agentCtx    context.Context
	agentCancel context.CancelFunc
	cat         *catalog
	frag        *planpb.Plan
	scans       map[int][]string // tables each bridge scans
	id          string
	all         bool // all or nothing
	wg          sync.WaitGroup
	stopped     atomic.Bool

	bytes, rows atomic.Int64
	mu          sync.Mutex
	missing     map[string]bool
	warnings    []string
}

func newRun(ctx context.Context, b *Broker, cat *catalog, c *query.Compiled, frag *planpb.Plan) *run {
	node := c.Split.Node
	q := &run{b: b, cat: cat, frag: frag, id: c.ID, all: c.AllOrNothing, scans: map[int][]string{}, missing: map[string]bool{}}
	q.ctx, q.cancel = context.WithCancelCause(ctx)
	deadline, _ := ctx.Deadline()
	margin := time.Until(deadline) / 10
	margin = min(max(margin, 20*time.Millisecond), 2*time.Second)
	q.agentCtx, q.agentCancel = context.WithDeadline(q.ctx, deadline.Add(-margin))
	for _, s := range node.Sinks {
		if bs, ok := s.Input.(*plan.BridgeSink); ok {
			q.scans[bs.ID] = scannedTables(bs)
		}
	}
	for _, st := range cat.agents {
		if st.err != nil {
			q.missing[st.conn.addr] = true
		}
	}
	return q
}

// stop cancels what is still running and waits for every stream reader.
func (q *run) stop() {
	q.stopped.Store(true)
	q.agentCancel()
	q.cancel(context.Canceled)
	q.wg.Wait()
}

// report adds what the query learned to res.
func (q *run) report(res *query.Result) {
	q.mu.Lock()
	defer q.mu.Unlock()
	complete := 0
	for _, st := range q.cat.agents {
		if !q.missing[st.conn.addr] {
			complete++
		}
	}
	for _, w := range q.warnings {
		res.Warn(w)
	}
	res.BytesMoved, res.RowsMoved, res.Agents = q.bytes.Load(), q.rows.Load(), complete
}

// warn records a warning about agent addr (none when addr is empty).
func (q *run) warn(addr, w string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if addr != "" {
		if q.missing[addr] {
			return
		}
		q.missing[addr] = true
	}
	q.warnings = append(q.warnings, w)
}

// Source starts one stream per eligible agent for bridge id and returns
// the reader of their merged batches.
func (q *run) Source(id int) (exec.BatchReader, error) {
	ch := make(chan arrow.Record, q.b.cfg.BridgeBuffer)
	var wg sync.WaitGroup
	for _, st := range q.cat.agents {
		if st.err != nil || !hasTables(st, q.scans[id]) {
			continue
		}
		wg.Add(1)
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			defer wg.Done()
			q.stream(st, id, ch)
		}()
	}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		wg.Wait()
		close(ch)
	}()
	return &reader{q: q, ch: ch}, nil
}

// Send and CloseSend are not used: the merge fragment has no bridge
// sinks.
func (q *run) Send(id int, _ arrow.Record) error {
	return fmt.Errorf("broker: the merge fragment cannot send to bridge #%d", id)
}

func (q *run) CloseSend(int) error { return nil }

// stream reads one agent's batches of bridge id into ch.
func (q *run) stream(st *agentState, id int, ch chan<- arrow.Record) {
	fail := func(err error) {
		if q.stopped.Load() || q.ctx.Err() != nil {
			return // the query ended; this is not the agent's fault
		}
		var msg string
		switch {
		case q.agentCtx.Err() != nil || status.Code(err) == codes.DeadlineExceeded:
			msg = fmt.Sprintf("agent %s did not finish within the query's deadline: its results are incomplete or missing", st.name())
		default:
			msg = fmt.Sprintf("agent %s failed: %v: its results are incomplete or missing", st.name(), err)
		}
		q.warn(st.conn.addr, msg)
		if q.all {
			q.cancel(fmt.Errorf("broker: %w: %s", ErrAgentMissing, msg))
		}
	}
	s, err := st.conn.client.Execute(q.agentCtx, &agentpb.ExecuteRequest{QueryId: q.id, Fragment: q.frag, BridgeIds: []int32{int32(id)}})
	if err != nil {
		fail(err)
		return
	}
	for {
		resp, err := s.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			fail(err)
			return
		}
		batch := resp.GetBatch()
		if batch == nil {
			continue
		}
		rec, err := arrowipc.Decode(batch.GetArrowIpc())
		if err != nil {
			fail(err)
			return
		}
		q.bytes.Add(int64(len(batch.GetArrowIpc())))
		q.rows.Add(rec.NumRows())
		select {
		case ch <- rec:
		case <-q.agentCtx.Done():
			fail(q.agentCtx.Err())
			return
		}
	}
}

// reader is the merge fragment's BridgeSource reader.
type reader struct {
	q  *run
	ch <-chan arrow.Record
}

func (r *reader) Next(ctx context.Context) (arrow.Record, error) {
	select {
	case rec, ok := <-r.ch:
		if !ok {
			if err := context.Cause(r.q.ctx); err != nil && r.q.all {
				return nil, err
			}
			return nil, nil
		}
		return rec, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func scannedTables(n plan.Node) []string {
	seen := map[string]bool{}
	var walk func(plan.Node)
	walk = func(n plan.Node) {
		if s, ok := n.(*plan.Scan); ok {
			seen[s.Table] = true
		}
		for _, c := range n.Children() {
			walk(c)
		}
	}
	walk(n)
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func hasTables(st *agentState, tables []string) bool {
	for _, t := range tables {
		if _, ok := st.tables[t]; !ok {
			return false
		}
	}
	return true
}
