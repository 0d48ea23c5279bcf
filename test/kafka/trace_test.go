package kafkatest

// The socket tracer over the cycles: the broker (kfake) runs in the test
// process, franz-go, sarama and kafka-go too, kcat in processes of its
// own; every row that lands is checked against what the clients did and
// the number of rows of each API key against what the broker handled.

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/table"
)

const table_ = "kafka_events.beta"

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// traced waits for the rows of a cycle's requests on one side (keep) to
// stop coming, and returns them with the tracer's count of requests left
// without a response.
func traced(t *testing.T, tr *ebpf.Tracer, store *table.Store, handled map[[2]int16]int, keep func(row) bool) ([]row, int64) {
	t.Helper()
	n := 0
	for _, c := range handled {
		n += c
	}
	rows := ebpftest.WaitRows(t, store, table_, n-2, 10*time.Second, keep)
	for { // the last ones, and the connections' ends
		time.Sleep(300 * time.Millisecond)
		more := ebpftest.WaitRows(t, store, table_, 0, 0, keep)
		if len(more) == len(rows) {
			break
		}
		rows = more
	}
	st := tr.Stats()
	t.Logf("%d rows for %d requests; lost events %d; kafka counters %v", len(rows), n, st.LostEvents, kafkaCounters(st.Counters))
	return rows, st.Counters["kafka.closed_before_response"]
}

func kafkaCounters(all map[string]int64) map[string]int64 {
	m := map[string]int64{}
	for k, v := range all {
		if len(k) > 6 && k[:6] == "kafka." {
			m[k[6:]] = v
		}
	}
	return m
}

// traceCase runs a cycle on a broker of its own under a tracer of its
// own, and checks the rows of the sides given (rows of the others must
// not be there).
func traceCase(t *testing.T, cfg ebpf.Config, name string, client, server bool, run func(b *broker, tag, topic, group string) *cycle) {
	t.Helper()
	tr, store := ebpftest.Tracer(t, cfg)
	b := startBroker(t, "t-"+name)
	cy := run(b, name, "t-"+name, "g-"+name)
	p := port(b.Addr)
	for _, side := range []struct {
		name string
		want bool
		keep func(row) bool
	}{{"client", client, ebpftest.ClientRow(p)}, {"server", server, ebpftest.ServerRow(p)}} {
		if !side.want {
			if n := len(ebpftest.WaitRows(t, store, table_, 0, 0, side.keep)); n != 0 {
				t.Errorf("%d %s rows, want none", n, side.name)
			}
			continue
		}
		// The tracer's count of requests left unanswered is both sides'.
		rows, unanswered := traced(t, tr, store, b.Handled(), side.keep)
		checkCycle(t, side.name, rows, cy, b.Handled(), unanswered)
	}
	if c := kafkaCounters(tr.Stats().Counters); c["decode_errors"]+c["parse_errors"]+c["unmatched_responses"]+c["damaged_messages"] != 0 {
		t.Errorf("counters %v", c)
	}
}

// TestTraceFranz traces franz-go's cycle at its newest versions (Produce
// v13, Fetch v18, …) and at those of Kafka 2.1: both ends are in this
// process, so each request is one row, the broker's.
func TestTraceFranz(t *testing.T) {
	for _, rel := range []string{"franz", "2.1"} {
		t.Run(rel, func(t *testing.T) {
			traceCase(t, ebpf.Config{}, "trace-franz-"+rel, false, true, func(b *broker, tag, topic, group string) *cycle {
				return franzCycle(t, b.Addr, tag, topic, group, release(rel))
			})
		})
	}
}

// TestTraceBothSides keeps the client's side too: each request is two
// rows, both checked.
func TestTraceBothSides(t *testing.T) {
	traceCase(t, ebpf.Config{AllClientSides: true}, "trace-both", true, true, func(b *broker, tag, topic, group string) *cycle {
		return franzCycle(t, b.Addr, tag, topic, group, nil)
	})
}

// TestTraceClients traces the cycles of sarama (its default and newest
// versions), kafka-go and kcat (in processes of its own, whose requests
// are the broker's rows).
func TestTraceClients(t *testing.T) {
	t.Run("sarama-2.8", func(t *testing.T) {
		traceCase(t, ebpf.Config{}, "trace-sarama-2.8", false, true, func(b *broker, tag, topic, group string) *cycle {
			return saramaCycle(t, b.Addr, tag, topic, group, sarama.DefaultVersion)
		})
	})
	t.Run("sarama-4.3", func(t *testing.T) {
		traceCase(t, ebpf.Config{}, "trace-sarama-4.3", false, true, func(b *broker, tag, topic, group string) *cycle {
			return saramaCycle(t, b.Addr, tag, topic, group, sarama.MaxVersion)
		})
	})
	t.Run("kafka-go", func(t *testing.T) {
		traceCase(t, ebpf.Config{}, "trace-kafka-go", false, true, func(b *broker, tag, topic, group string) *cycle {
			return kafkagoCycle(t, b, tag, topic, group)
		})
	})
	t.Run("kcat", func(t *testing.T) {
		kcat(t)
		// Only this process, the broker's: tracing every process of a
		// busy machine can fill the ring buffer.
		traceCase(t, ebpf.Config{}, "trace-kcat", false, true, func(b *broker, tag, topic, group string) *cycle {
			return kcatCycle(t, b.Addr, tag, topic, group)
		})
	})
}
