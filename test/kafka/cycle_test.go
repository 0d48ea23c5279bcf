package kafkatest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

type row = map[string]any

// cycle is what the clients of a produce/consume cycle did, as they tell
// it: the rows of their requests are checked against it.
type cycle struct {
	Topic, Group string
	Producer     string // the producer's client id
	Consumer     string // the consumer's
	// Produced are the offsets the broker gave the records produced, by
	// partition; Consumed the offsets of the records consumed.
	Produced, Consumed map[int32][]int64
	// Committed is the offset committed per partition.
	Committed map[int32]int64
	// MemberID and Generation are the consumer's in the group at the end,
	// Assigned the partitions it was assigned then.
	MemberID   string
	Generation int32 // -1: not told
	Assigned   []int32
	// Heartbeats: the consumer waited for some.
	Heartbeats bool
}

func (c *cycle) records() int {
	n := 0
	for _, o := range c.Produced {
		n += len(o)
	}
	return n
}

// franzCycle produces 12 records to topic with franz-go (in three
// batches), consumes them in group with a franz-go group consumer,
// commits, lets it heartbeat and leaves. versions caps the protocol
// versions the clients use (nil: franz-go's own).
func franzCycle(t *testing.T, addr, tag, topic, group string, versions *kversion.Versions) *cycle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cy := &cycle{Topic: topic, Group: group, Producer: tag + "-producer", Consumer: tag + "-consumer",
		Produced: map[int32][]int64{}, Consumed: map[int32][]int64{}, Committed: map[int32]int64{}, Heartbeats: true}
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.MetadataMinAge(50 * time.Millisecond)}
	if versions != nil {
		opts = append(opts, kgo.MaxVersions(versions))
		if v, ok := versions.LookupMaxKeyVersion(22); !ok || v < 0 { // no InitProducerID: no idempotence
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
	}
	p, err := kgo.NewClient(append(opts, kgo.ClientID(cy.Producer), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	for batch := range 3 {
		var recs []*kgo.Record
		for i := range 4 {
			recs = append(recs, &kgo.Record{Partition: int32((batch + i) % 3), Key: []byte(fmt.Sprint("k", i)),
				Value: []byte(fmt.Sprintf("%s value %d.%d", tag, batch, i))})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", tag, err)
		}
		for _, r := range recs {
			cy.Produced[r.Partition] = append(cy.Produced[r.Partition], r.Offset)
		}
	}
	p.Close()

	var mu sync.Mutex
	c, err := kgo.NewClient(append(opts, kgo.ClientID(cy.Consumer), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.HeartbeatInterval(100*time.Millisecond), kgo.SessionTimeout(6*time.Second),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			cy.Assigned = append(cy.Assigned, m[topic]...)
			mu.Unlock()
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < cy.records() {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%s: consumed %d of %d records: %v", tag, got, cy.records(), err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("%s: fetch %s/%d: %v", tag, topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			cy.Consumed[r.Partition] = append(cy.Consumed[r.Partition], r.Offset)
			got++
		})
	}
	if err := c.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("%s: commit: %v", tag, err)
	}
	for p, offs := range cy.Consumed {
		cy.Committed[p] = slices.Max(offs) + 1
	}
	time.Sleep(400 * time.Millisecond) // heartbeats
	cy.MemberID, cy.Generation = c.GroupMetadata()
	c.Close() // leaves the group
	mu.Lock()
	sort.Slice(cy.Assigned, func(i, j int) bool { return cy.Assigned[i] < cy.Assigned[j] })
	mu.Unlock()
	return cy
}

// jsonOf decodes a row's JSON column; "" is nil.
func jsonOf(t *testing.T, r row, col string) map[string]any {
	t.Helper()
	s, _ := r[col].(string)
	if s == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Errorf("%s of a %v row is not JSON: %v\n%s", col, r["req_cmd"], err, s)
	}
	return m
}

func arr(v any) []any {
	a, _ := v.([]any)
	return a
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// parsedKeys are the API keys whose bodies the parser decodes.
var parsedKeys = map[int64]bool{0: true, 1: true, 2: true, 3: true, 8: true, 9: true, 10: true, 11: true, 12: true,
	13: true, 14: true, 15: true, 16: true, 17: true, 18: true, 19: true, 20: true, 22: true, 23: true, 36: true}

// checkCycle checks the rows of a cycle's requests (one side's) against
// what the clients did, and the number of rows of each API key against
// the requests the broker handled (nil: not checked), of which at most
// unanswered had no response (a fetch waiting for records when its
// consumer closed the connection: the parser counts it).
func checkCycle(t *testing.T, side string, rows []row, cy *cycle, handled map[[2]int16]int, unanswered int64) {
	t.Helper()
	byKey := map[int64][]row{}
	for _, r := range rows {
		k := r["req_cmd"].(int64)
		byKey[k] = append(byKey[k], r)
		if id := r["client_id"]; id != cy.Producer && id != cy.Consumer {
			t.Errorf("%s: a %d row has client_id %q", side, k, id)
		}
		req, resp := jsonOf(t, r, "req_body"), jsonOf(t, r, "resp")
		if parsedKeys[k] && (req == nil || resp == nil) {
			t.Errorf("%s: a %d row has req_body %q resp %q", side, k, r["req_body"], r["resp"])
		}
		if _, cut := req["truncated"]; cut {
			t.Errorf("%s: a %d row's req_body was cut", side, k)
		}
		if lat := r["latency"].(int64); lat <= 0 || lat > int64(30*time.Second) {
			t.Errorf("%s: a %d row has latency %d", side, k, lat)
		}
	}
	if handled != nil {
		perKey := map[int64]int{}
		for kv, n := range handled {
			perKey[int64(kv[0])] += n
		}
		missing := int64(0)
		for k, n := range perKey {
			if len(byKey[k]) > n || (k != 1 && len(byKey[k]) != n) {
				t.Errorf("%s: %d rows of API key %d, the broker handled %d requests", side, len(byKey[k]), k, n)
			}
			missing += int64(n - len(byKey[k]))
		}
		// A request read as its client closes the connection may not
		// reach the broker's handler: unanswered can be more.
		if missing > unanswered {
			t.Errorf("%s: %d requests without a row, %d without a response", side, missing, unanswered)
		}
		for k, rs := range byKey {
			if perKey[k] == 0 {
				t.Errorf("%s: %d rows of API key %d, which the broker did not handle", side, len(rs), k)
			}
		}
	}

	// Produce: the record counts and base offsets of the responses give
	// back the offsets the producer was told.
	got := map[int32][]int64{}
	for _, r := range byKey[0] {
		req, resp := jsonOf(t, r, "req_body"), jsonOf(t, r, "resp")
		counts := map[int32]int64{}
		for _, tp := range arr(req["topics"]) {
			if obj(tp)["name"] != cy.Topic {
				t.Errorf("%s: produce to %v, want %s", side, obj(tp)["name"], cy.Topic)
			}
			for _, p := range arr(obj(tp)["partitions"]) {
				ms := obj(obj(p)["message_set"])
				counts[int32(num(obj(p)["index"]))] = num(ms["records"])
				if num(ms["batches"]) != 1 || num(ms["size"]) <= 0 {
					t.Errorf("%s: produce message_set %v", side, ms)
				}
			}
		}
		for _, tp := range arr(resp["topics"]) {
			for _, p := range arr(obj(tp)["partitions"]) {
				i, base := int32(num(obj(p)["index"])), num(obj(p)["base_offset"])
				for o := base; o < base+counts[i]; o++ {
					got[i] = append(got[i], o)
				}
			}
		}
	}
	want := sortedOffsets(cy.Produced)
	if g := sortedOffsets(got); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("%s: produce rows give offsets %v, the producer got %v", side, g, want)
	}

	// Fetch: the records of the responses are those consumed.
	fetched := map[int32]int64{}
	for _, r := range byKey[1] {
		for _, tp := range arr(jsonOf(t, r, "resp")["topics"]) {
			if obj(tp)["name"] != cy.Topic {
				t.Errorf("%s: fetch from %v, want %s", side, obj(tp)["name"], cy.Topic)
			}
			for _, p := range arr(obj(tp)["partitions"]) {
				fetched[int32(num(obj(p)["index"]))] += num(obj(obj(p)["message_set"])["records"])
			}
		}
	}
	for p, offs := range cy.Consumed {
		if fetched[p] != int64(len(offs)) {
			t.Errorf("%s: fetch rows hold %d records of partition %d, the consumer got %d", side, fetched[p], p, len(offs))
		}
	}

	// The group: the join that gave the consumer its member id and
	// generation, its assignment, heartbeats, the commit and the leave.
	joined := false
	for _, r := range byKey[11] {
		req, resp := jsonOf(t, r, "req_body"), jsonOf(t, r, "resp")
		if req["group_id"] != cy.Group || req["protocol_type"] != "consumer" {
			t.Errorf("%s: join %v", side, req)
		}
		if resp["member_id"] == cy.MemberID && (cy.Generation < 0 || int32(num(resp["generation_id"])) == cy.Generation) {
			joined = true
			if resp["leader"] == cy.MemberID && len(arr(resp["members"])) != 1 {
				t.Errorf("%s: the leader's join response lists %v", side, resp["members"])
			}
		}
	}
	if !joined {
		t.Errorf("%s: no join response gave member %s generation %d", side, cy.MemberID, cy.Generation)
	}
	synced := false
	for _, r := range byKey[14] {
		req, resp := jsonOf(t, r, "req_body"), jsonOf(t, r, "resp")
		if req["member_id"] != cy.MemberID || (cy.Generation >= 0 && int32(num(req["generation_id"])) != cy.Generation) {
			continue
		}
		for _, tp := range arr(obj(resp["assignment"])["assigned_partitions"]) {
			if obj(tp)["name"] == cy.Topic {
				var ps []int32
				for _, p := range arr(obj(tp)["partitions"]) {
					ps = append(ps, int32(num(p)))
				}
				slices.Sort(ps)
				synced = fmt.Sprint(ps) == fmt.Sprint(cy.Assigned)
				if !synced {
					t.Errorf("%s: sync assigned %v, the consumer was assigned %v", side, ps, cy.Assigned)
				}
			}
		}
	}
	if !synced {
		t.Errorf("%s: no sync response assigned %v", side, cy.Assigned)
	}
	if cy.Heartbeats {
		beats := 0
		for _, r := range byKey[12] {
			if req := jsonOf(t, r, "req_body"); req["member_id"] == cy.MemberID && req["group_id"] == cy.Group {
				beats++
			}
		}
		if beats == 0 {
			t.Errorf("%s: no heartbeat of member %s", side, cy.MemberID)
		}
	}
	committed := map[int32]int64{}
	for _, r := range byKey[8] {
		req := jsonOf(t, r, "req_body")
		if req["group_id"] != cy.Group {
			t.Errorf("%s: commit %v", side, req)
		}
		for _, tp := range arr(req["topics"]) {
			for _, p := range arr(obj(tp)["partitions"]) {
				committed[int32(num(obj(p)["index"]))] = num(obj(p)["committed_offset"])
			}
		}
	}
	if fmt.Sprint(committed) != fmt.Sprint(cy.Committed) {
		t.Errorf("%s: commit rows commit %v, the consumer committed %v", side, committed, cy.Committed)
	}
	left := false
	for _, r := range byKey[13] {
		req := jsonOf(t, r, "req_body")
		left = left || req["member_id"] == cy.MemberID || (len(arr(req["members"])) > 0 && obj(arr(req["members"])[0])["member_id"] == cy.MemberID)
	}
	if !left {
		t.Errorf("%s: no leave of member %s", side, cy.MemberID)
	}
	// Metadata tells the topic and its partitions.
	told := false
	for _, r := range byKey[3] {
		for _, tp := range arr(jsonOf(t, r, "resp")["topics"]) {
			told = told || (obj(tp)["name"] == cy.Topic && len(arr(obj(tp)["partitions"])) == 3)
		}
	}
	if !told {
		t.Errorf("%s: no metadata response tells %s's 3 partitions", side, cy.Topic)
	}
}

func sortedOffsets(m map[int32][]int64) map[int32][]int64 {
	out := map[int32][]int64{}
	for p, o := range m {
		s := slices.Clone(o)
		slices.Sort(s)
		out[p] = s
	}
	return out
}
