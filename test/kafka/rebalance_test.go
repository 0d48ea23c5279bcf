package kafkatest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
)

// assignment is what a consumer was told after a rebalance.
type assignment struct {
	member     string
	generation int32
	partitions []int32
}

// TestTraceRebalance traces a group's rebalances: a consumer joins, a
// second joins, the second leaves. Each assignment the consumers were
// given is a SyncGroup row of their member id and generation whose
// response assigns those partitions; the members of a generation share
// the partitions out; the joins, the heartbeats that told of the
// rebalance and the leave are rows.
func TestTraceRebalance(t *testing.T) {
	tr, store := ebpftest.Tracer(t, ebpf.Config{})
	const topic, group = "t-rebalance", "g-rebalance"
	b := startBroker(t, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID("rebalance-producer"), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()

	var mu sync.Mutex
	var told []assignment
	consumer := func(id string) *kgo.Client {
		var c *kgo.Client
		c, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ClientID(id), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.RangeBalancer()), kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(6*time.Second),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
				member, gen := cl.GroupMetadata()
				mu.Lock()
				told = append(told, assignment{member, gen, slices.Sorted(slices.Values(m[topic]))})
				mu.Unlock()
			}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	poll := func(c *kgo.Client, stop chan struct{}, done *sync.WaitGroup) {
		defer done.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
			c.PollFetches(pctx)
			pcancel()
		}
	}
	members := func(n int) {
		if _, err := b.WaitGroupStable(ctx, group, n); err != nil {
			t.Fatalf("group of %d: %v", n, err)
		}
		time.Sleep(300 * time.Millisecond) // heartbeats
	}
	var done1, done2 sync.WaitGroup
	stop1, stop2 := make(chan struct{}), make(chan struct{})
	c1 := consumer("rebalance-c1")
	done1.Add(1)
	go poll(c1, stop1, &done1)
	members(1)
	c2 := consumer("rebalance-c2")
	done2.Add(1)
	go poll(c2, stop2, &done2)
	members(2)
	close(stop2)
	done2.Wait()
	c2.Close() // leaves: c1 takes every partition again
	members(1)
	close(stop1)
	done1.Wait()
	c1.Close()

	rows, _ := traced(t, tr, store, b.Handled(), ebpftest.ServerRow(port(b.Addr)))
	mu.Lock()
	defer mu.Unlock()
	if len(told) < 4 {
		t.Fatalf("the consumers were told %d assignments: %v", len(told), told)
	}
	syncs := map[int32]map[string][]int32{} // generation → member → partitions, from the rows
	joins, leaves, rebalanceBeats := map[int32]int{}, 0, 0
	for _, r := range rows {
		req, resp := jsonOf(t, r, "req_body"), jsonOf(t, r, "resp")
		switch r["req_cmd"] {
		case int64(11):
			if num(resp["error_code"]) == 0 {
				joins[int32(num(resp["generation_id"]))]++
			}
		case int64(14):
			gen := int32(num(req["generation_id"]))
			if syncs[gen] == nil {
				syncs[gen] = map[string][]int32{}
			}
			var ps []int32
			for _, tp := range arr(obj(resp["assignment"])["assigned_partitions"]) {
				for _, p := range arr(obj(tp)["partitions"]) {
					ps = append(ps, int32(num(p)))
				}
			}
			syncs[gen][req["member_id"].(string)] = slices.Sorted(slices.Values(ps))
		case int64(12):
			if num(resp["error_code"]) == 27 { // REBALANCE_IN_PROGRESS
				rebalanceBeats++
			}
		case int64(13):
			leaves++
		}
	}
	for _, a := range told {
		if got, ok := syncs[a.generation][a.member]; !ok || fmt.Sprint(got) != fmt.Sprint(a.partitions) {
			t.Errorf("member %s was assigned %v in generation %d; the sync rows say %v", a.member, a.partitions, a.generation, syncs[a.generation])
		}
	}
	two := false
	for gen, ms := range syncs {
		var all []int32
		for _, ps := range ms {
			all = append(all, ps...)
		}
		slices.Sort(all)
		if fmt.Sprint(all) != "[0 1 2]" {
			t.Errorf("generation %d shares out %v: %v", gen, all, ms)
		}
		if joins[gen] != len(ms) {
			t.Errorf("generation %d: %d joins, %d members synced", gen, joins[gen], len(ms))
		}
		two = two || len(ms) == 2
	}
	if !two || len(syncs) < 3 || leaves < 2 {
		t.Errorf("generations %v, %d leaves", syncs, leaves)
	}
	t.Logf("%d rows; generations %v; %d heartbeats answered REBALANCE_IN_PROGRESS; the consumers were told %v", len(rows), syncs, rebalanceBeats, told)
}
