package kafkatest

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/pxq-dev/pxq/internal/testenv"
)

// The cycles of the other clients: 12 records produced to 3 partitions
// (4 each, in batches of 4), consumed in a group, committed; the group
// left.

// saramaCycle runs the cycle with IBM/sarama at protocol version v.
func saramaCycle(t *testing.T, addr, tag, topic, group string, v sarama.KafkaVersion) *cycle {
	t.Helper()
	cy := &cycle{Topic: topic, Group: group, Producer: tag + "-producer", Consumer: tag + "-consumer",
		Produced: map[int32][]int64{}, Consumed: map[int32][]int64{}, Committed: map[int32]int64{}, Heartbeats: true}
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = cy.Producer
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("%s: %v", tag, err)
	}
	for batch := range 3 {
		var msgs []*sarama.ProducerMessage
		for i := range 4 {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32((batch + i) % 3),
				Key: sarama.StringEncoder(fmt.Sprint("k", i)), Value: sarama.StringEncoder(fmt.Sprintf("%s %d.%d", tag, batch, i))})
		}
		if err := p.SendMessages(msgs); err != nil {
			t.Fatalf("%s: produce: %v", tag, err)
		}
		for _, m := range msgs {
			cy.Produced[m.Partition] = append(cy.Produced[m.Partition], m.Offset)
		}
	}
	p.Close()

	cfg = sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = cy.Consumer
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	g, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatalf("%s: %v", tag, err)
	}
	h := &saramaHandler{cy: cy, want: cy.records(), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- g.Consume(ctx, []string{topic}, h) }()
	select {
	case <-h.done:
	case err := <-stopped:
		t.Fatalf("%s: consume: %v", tag, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: consumed %d records", tag, h.n)
	}
	time.Sleep(400 * time.Millisecond) // heartbeats
	cancel()
	<-stopped
	if err := g.Close(); err != nil { // leaves the group
		t.Fatalf("%s: close: %v", tag, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p, offs := range cy.Consumed {
		cy.Committed[p] = slices.Max(offs) + 1
	}
	slices.Sort(cy.Assigned)
	return cy
}

type saramaHandler struct {
	cy   *cycle
	want int
	mu   sync.Mutex
	n    int
	done chan struct{}
	once sync.Once
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cy.MemberID, h.cy.Generation = s.MemberID(), s.GenerationID()
	h.cy.Assigned = append([]int32(nil), s.Claims()[h.cy.Topic]...)
	return nil
}

func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.cy.Consumed[m.Partition] = append(h.cy.Consumed[m.Partition], m.Offset)
		h.n++
		n := h.n
		h.mu.Unlock()
		s.MarkMessage(m, "")
		if n == h.want {
			s.Commit()
			h.once.Do(func() { close(h.done) })
		}
	}
	return nil
}

// kafkagoCycle runs the cycle with segmentio/kafka-go's Writer and a
// group Reader. kafka-go does not tell member ids, generations or
// assignments: the broker's view of the group is taken instead.
func kafkagoCycle(t *testing.T, b *broker, tag, topic, group string) *cycle {
	t.Helper()
	cy := &cycle{Topic: topic, Group: group, Producer: tag + "-producer", Consumer: tag + "-consumer",
		Produced: map[int32][]int64{}, Consumed: map[int32][]int64{}, Committed: map[int32]int64{}, Heartbeats: true}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &kafkago.Writer{Addr: kafkago.TCP(b.Addr), Topic: topic, BatchTimeout: 10 * time.Millisecond,
		RequiredAcks: kafkago.RequireAll, Transport: &kafkago.Transport{ClientID: cy.Producer},
		Balancer: kafkago.BalancerFunc(func(m kafkago.Message, _ ...int) int {
			p, _ := strconv.Atoi(string(m.Key))
			return p
		})}
	for batch := range 3 {
		var msgs []kafkago.Message
		for i := range 4 {
			p := (batch + i) % 3
			msgs = append(msgs, kafkago.Message{Key: []byte(strconv.Itoa(p)), Value: []byte(fmt.Sprintf("%s %d.%d", tag, batch, i))})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("%s: produce: %v", tag, err)
		}
		// The partitions were empty: a partition's records take offsets
		// from 0, in the order written.
		for _, m := range msgs {
			p, _ := strconv.Atoi(string(m.Key))
			cy.Produced[int32(p)] = append(cy.Produced[int32(p)], int64(len(cy.Produced[int32(p)])))
		}
	}
	w.Close()

	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{b.Addr}, GroupID: group, Topic: topic,
		Dialer: &kafkago.Dialer{ClientID: cy.Consumer, Timeout: 10 * time.Second}, StartOffset: kafkago.FirstOffset,
		MaxWait: 200 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second})
	for range cy.records() {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("%s: fetch: %v", tag, err)
		}
		cy.Consumed[int32(m.Partition)] = append(cy.Consumed[int32(m.Partition)], m.Offset)
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("%s: commit: %v", tag, err)
		}
	}
	for p, offs := range cy.Consumed {
		cy.Committed[p] = slices.Max(offs) + 1
	}
	time.Sleep(400 * time.Millisecond) // heartbeats
	gi := b.GroupInfo(group)
	if gi == nil || len(gi.Members) != 1 {
		t.Fatalf("%s: group %+v", tag, gi)
	}
	cy.MemberID, cy.Generation = gi.Members[0].MemberID, gi.Epoch
	cy.Assigned = slices.Sorted(slices.Values(gi.Members[0].Assignment[topic]))
	r.Close() // leaves the group
	return cy
}

// kcat is Debian's kcat (librdkafka), which .ci/run installs.
func kcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		testenv.SkipOrFailf(t, "kcat not found (apt-get install kcat): %v", err)
	}
	return p
}

// kcatCycle runs the cycle with kcat: a producer per partition, then a
// balanced consumer that exits after the 12 records (committing them as
// it closes). Its member id and assignment are what it prints.
func kcatCycle(t *testing.T, addr, tag, topic, group string) *cycle {
	t.Helper()
	bin := kcat(t)
	cy := &cycle{Topic: topic, Group: group, Producer: tag + "-producer", Consumer: tag + "-consumer",
		Produced: map[int32][]int64{}, Consumed: map[int32][]int64{}, Committed: map[int32]int64{}, Generation: -1}
	run := func(stdin string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-b", addr, "-X", "broker.address.family=v4"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for p := range int32(3) {
		var lines []string
		for i := range 4 {
			lines = append(lines, fmt.Sprintf("%s %d.%d", tag, p, i))
			cy.Produced[p] = append(cy.Produced[p], int64(i))
		}
		run(strings.Join(lines, "\n")+"\n", "-P", "-t", topic, "-p", strconv.Itoa(int(p)), "-X", "client.id="+cy.Producer)
	}
	out := run("", "-G", group, "-X", "client.id="+cy.Consumer, "-X", "auto.offset.reset=earliest",
		"-f", "%p %o\n", "-c", strconv.Itoa(cy.records()), topic)
	for _, line := range strings.Split(out, "\n") {
		var p int32
		var o int64
		if n, _ := fmt.Sscanf(line, "%d %d", &p, &o); n == 2 {
			cy.Consumed[p] = append(cy.Consumed[p], o)
		}
	}
	m := regexp.MustCompile(`rebalanced \(memberid (\S+)\): assigned: (.*)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("kcat printed no assignment:\n%s", out)
	}
	cy.MemberID = m[1]
	for _, a := range regexp.MustCompile(`\[(\d+)\]`).FindAllStringSubmatch(m[2], -1) {
		p, _ := strconv.Atoi(a[1])
		cy.Assigned = append(cy.Assigned, int32(p))
	}
	slices.Sort(cy.Assigned)
	for p, offs := range cy.Consumed {
		cy.Committed[p] = slices.Max(offs) + 1
	}
	return cy
}
