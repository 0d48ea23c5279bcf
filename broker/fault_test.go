package broker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
)

const countScript = `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
px.display(df.groupby(['req_path']).agg(n=('latency', px.count)), 'counts')
px.display(df[['time_', 'req_path']], 'rows')
`

// hookStream calls before ahead of every message an agent sends.
type hookStream struct {
	grpc.ServerStream
	before func(ctx context.Context, n int)
	n      int
}

func (h *hookStream) SendMsg(m any) error {
	h.before(h.Context(), h.n)
	h.n++
	return h.ServerStream.SendMsg(m)
}

// hooked returns a server option that calls before ahead of each message
// of every Execute stream, and counts the streams whose context ended
// (cancelled by the broker) when the handler returned.
func hooked(before func(ctx context.Context, n int), cancelled *atomic.Int32) grpc.ServerOption {
	return grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		err := h(srv, &hookStream{ServerStream: ss, before: before})
		if cancelled != nil && ss.Context().Err() != nil {
			cancelled.Add(1)
		}
		return err
	})
}

// faultCluster starts three agents; the last one gets opts.
func faultCluster(t *testing.T, opts ...grpc.ServerOption) (*testCluster, []*brokertest.Agent) {
	t.Helper()
	c := &testCluster{now: time.Now()}
	var addrs []string
	for i := 0; i < 3; i++ {
		asid := uint32(i + 1)
		eng := brokertest.NewEngine(t, brokertest.Meta{}, asid)
		brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, asid, int64(asid), 3000, c.now)
		var a *brokertest.Agent
		if i == 2 {
			a = brokertest.StartAgent(t, eng, asid, opts...)
		} else {
			a = brokertest.StartAgent(t, eng, asid)
		}
		c.agents = append(c.agents, a)
		addrs = append(addrs, a.Addr)
	}
	b, err := broker.New(broker.Config{Agents: addrs, Meta: brokertest.Meta{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c.broker = b
	return c, c.agents
}

func TestAgentDown(t *testing.T) {
	c, agents := faultCluster(t)
	agents[2].Stop()
	q := engine.Query{Script: pxl(countScript), Now: c.now}
	tables, info, err := c.runDistributed(context.Background(), q, distOpts{MaxRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	if info.Agents != 2 || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], agents[2].Addr) {
		t.Fatalf("agents %d, warnings %q", info.Agents, info.Warnings)
	}
	if got := tables[1].Rows(); got != 6000 {
		t.Fatalf("%d rows, want the 6000 of the two live agents", got)
	}
	_, _, err = c.runDistributed(context.Background(), q, distOpts{AllOrNothing: true})
	if !errors.Is(err, broker.ErrAgentMissing) || !strings.Contains(err.Error(), agents[2].Addr) {
		t.Fatalf("all or nothing: err = %v", err)
	}
}

func TestAgentDiesMidQuery(t *testing.T) {
	started := make(chan struct{}, 16)
	// The hooked agent sends its first message, then stalls until it
	// is killed.
	c, agents := faultCluster(t, hooked(func(ctx context.Context, n int) {
		if n == 1 {
			started <- struct{}{}
			<-ctx.Done()
		}
	}, nil))
	q := engine.Query{Script: pxl(countScript), Now: c.now}
	go func() {
		<-started
		agents[2].Stop()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, info, err := c.runDistributed(ctx, q, distOpts{MaxRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	if info.Agents != 2 || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], agents[2].Addr) || !strings.Contains(info.Warnings[0], "failed") {
		t.Fatalf("agents %d, warnings %q", info.Agents, info.Warnings)
	}
	// The broker and the other agents keep serving.
	if _, info, err = c.runDistributed(ctx, q, distOpts{}); err != nil || info.Agents != 2 {
		t.Fatalf("next query: %v, %d agents", err, info.Agents)
	}
}

func TestSlowAgentPastDeadline(t *testing.T) {
	var cancelled atomic.Int32
	c, agents := faultCluster(t, hooked(func(ctx context.Context, n int) { <-ctx.Done() }, &cancelled))
	q := engine.Query{Script: pxl(countScript), Now: c.now}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	tables, info, err := c.runDistributed(ctx, q, distOpts{MaxRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v, past the deadline", d)
	}
	if info.Agents != 2 || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], agents[2].Addr) || !strings.Contains(info.Warnings[0], "deadline") {
		t.Fatalf("agents %d, warnings %q", info.Agents, info.Warnings)
	}
	if got := tables[1].Rows(); got != 6000 {
		t.Fatalf("%d rows, want 6000", got)
	}
	waitFor(t, func() bool { return cancelled.Load() == 2 }) // both bridges' streams
}

func TestClientCancelCancelsEveryAgent(t *testing.T) {
	var cancelled atomic.Int32
	stall := hooked(func(ctx context.Context, n int) { <-ctx.Done() }, &cancelled)
	c := &testCluster{now: time.Now()}
	var addrs []string
	for i := 0; i < 3; i++ {
		eng := brokertest.NewEngine(t, brokertest.Meta{}, uint32(i+1))
		brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, uint32(i+1), int64(i), 100, c.now)
		addrs = append(addrs, brokertest.StartAgent(t, eng, uint32(i+1), stall).Addr)
	}
	b, err := broker.New(broker.Config{Agents: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c.broker = b
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, _, err = c.runDistributed(ctx, engine.Query{Script: pxl(countScript), Now: c.now}, distOpts{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("cancel took %v", time.Since(start))
	}
	// The merge reads bridge 1 first, so at least its three streams are
	// open; every open stream must see the cancellation.
	waitFor(t, func() bool { return cancelled.Load() >= 3 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResultLimitOnABroker: a result cut by the result limit ends the
// merge (and with it the agents' streams: goleak checks that none is
// left) and is flagged.
func TestResultLimitOnABroker(t *testing.T) {
	c := newCluster(t, 2, 20000, broker.Config{Meta: brokertest.Meta{}})
	r := &query.Runner{Backend: c.broker, Limits: query.Limits{MaxRowsPerTable: -1, MaxResultRows: 1000}}
	tables, res, err := r.Collect(context.Background(), engine.Query{Script: pxl(countScript), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0].Truncated || !tables[1].Truncated || tables[0].Rows()+tables[1].Rows() != 1000 ||
		!res.Truncated || res.Agents != 2 {
		t.Fatalf("tables %v, result %+v", tables, res)
	}
}
