package kafkatest

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/kafka"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
)

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

var parseConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// parse runs the parser over recorded connections as the tracer would on
// each side, and returns the rows of each side and the parsers' counters.
func parse(t *testing.T, chunks []chunk) (client, server []row, counts [2]map[string]int64) {
	t.Helper()
	hs := map[int]*[2]*protocoltest.Harness{}
	var ids []int
	for _, c := range chunks {
		h := hs[c.conn]
		if h == nil {
			h = &[2]*protocoltest.Harness{}
			for i, role := range roles {
				h[i] = protocoltest.New(t, kafka.Protocol{}, protocols.Conn{Role: role, Stream: true,
					Local: netip.MustParseAddrPort("127.0.0.1:9092"), Remote: netip.MustParseAddrPort("127.0.0.1:40000")}, parseConfig)
			}
			hs[c.conn] = h
			ids = append(ids, c.conn)
		}
		for i, role := range roles {
			dir := protocols.Ingress
			if c.toServer == (role == protocols.RoleClient) {
				dir = protocols.Egress
			}
			h[i].Parser.Data(protocols.Segment{Dir: dir, TS: c.ts, Data: c.data})
		}
	}
	counts = [2]map[string]int64{{}, {}}
	sort.Ints(ids)
	for _, id := range ids {
		for i, x := range hs[id] {
			x.Parser.Close(time.Now().UnixNano())
			rows := x.Rows(kafka.Table.Name())
			if i == 0 {
				client = append(client, rows...)
			} else {
				server = append(server, rows...)
			}
			for k, v := range x.Counts {
				counts[i][k] += v
			}
		}
	}
	return client, server, counts
}

// releases are the Kafka releases whose protocol versions the franz-go
// cycle is run at: together they use every version of Produce from 3 and
// of Fetch from 4 to franz-go's newest.
var releases = []struct {
	name string
	v    *kversion.Versions
}{
	{"0.11", kversion.V0_11_0()},
	{"1.0", kversion.V1_0_0()},
	{"1.1", kversion.V1_1_0()},
	{"2.0", kversion.V2_0_0()},
	{"2.1", kversion.V2_1_0()},
	{"2.3", kversion.V2_3_0()},
	{"2.4", kversion.V2_4_0()},
	{"2.7", kversion.V2_7_0()},
	{"2.8", kversion.V2_8_0()},
	{"3.1", kversion.V3_1_0()},
	{"3.5", kversion.V3_5_0()},
	{"3.7", kversion.V3_7_0()},
	{"3.9", kversion.V3_9_0()},
	{"4.0", kversion.V4_0_0()},
	{"4.1", kversion.V4_1_0()},
	{"franz", nil}, // franz-go's own newest
}

// parseCase runs a cycle on a broker of its own, parses its recording
// and checks the rows of both sides; it records the bytes for the
// parser's tests and returns the versions the broker handled.
func parseCase(t *testing.T, name string, run func(b *broker, tag, topic, group string) *cycle) map[[2]int16]int {
	t.Helper()
	b := startBroker(t, "t-"+name)
	cy := run(b, name, "t-"+name, "g-"+name)
	time.Sleep(100 * time.Millisecond)
	b.Close()
	handled := b.Handled()
	chunks := b.Chunks()
	client, server, counts := parse(t, chunks)
	checkCycle(t, "client", client, cy, handled, counts[0]["closed_before_response"])
	checkCycle(t, "server", server, cy, handled, counts[1]["closed_before_response"])
	for i, side := range []string{"client", "server"} {
		for _, c := range []string{"decode_errors", "parse_errors", "unmatched_responses", "requests_lost", "damaged_messages"} {
			if counts[i][c] != 0 {
				t.Errorf("%s: %s %d", side, c, counts[i][c])
			}
		}
	}
	t.Logf("%d rows a side; requests %s", len(server), versions(handled))
	record(t, name, chunks)
	return handled
}

func versions(handled map[[2]int16]int) string {
	var vs []string
	for kv, n := range handled {
		vs = append(vs, fmt.Sprintf("%d/v%d×%d", kv[0], kv[1], n))
	}
	sort.Strings(vs)
	return strings.Join(vs, " ")
}

// release returns the versions of the release named.
func release(name string) *kversion.Versions {
	for _, r := range releases {
		if r.name == name {
			return r.v
		}
	}
	panic("no release " + name)
}

// TestParseFranzVersions runs a produce/consume cycle with franz-go at
// the protocol versions of each release and checks the parser's rows of
// every connection, on the client's side and on the broker's, against
// what the clients did and what the broker handled.
func TestParseFranzVersions(t *testing.T) {
	used := map[int16]map[int16]bool{}
	for _, rel := range releases {
		t.Run(rel.name, func(t *testing.T) {
			handled := parseCase(t, "franz-"+rel.name, func(b *broker, tag, topic, group string) *cycle {
				return franzCycle(t, b.Addr, tag, topic, group, rel.v)
			})
			for kv := range handled {
				if used[kv[0]] == nil {
					used[kv[0]] = map[int16]bool{}
				}
				used[kv[0]][kv[1]] = true
			}
		})
	}
	logUsed(t, used)
}

// TestParseClients runs the cycle with sarama (at several versions),
// kafka-go and kcat.
func TestParseClients(t *testing.T) {
	used := map[int16]map[int16]bool{}
	cases := []struct {
		name string
		run  func(b *broker, tag, topic, group string) *cycle
	}{
		{"kafka-go", func(b *broker, tag, topic, group string) *cycle { return kafkagoCycle(t, b, tag, topic, group) }},
		{"kcat", func(b *broker, tag, topic, group string) *cycle { return kcatCycle(t, b.Addr, tag, topic, group) }},
	}
	for _, v := range []struct {
		name string
		v    sarama.KafkaVersion
	}{{"1.0", sarama.V1_0_0_0}, {"2.1", sarama.V2_1_0_0}, {"2.8", sarama.DefaultVersion}, {"3.6", sarama.V3_6_0_0}, {"4.3", sarama.MaxVersion}} {
		cases = append(cases, struct {
			name string
			run  func(b *broker, tag, topic, group string) *cycle
		}{"sarama-" + v.name, func(b *broker, tag, topic, group string) *cycle {
			return saramaCycle(t, b.Addr, tag, topic, group, v.v)
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for kv := range parseCase(t, c.name, c.run) {
				if used[kv[0]] == nil {
					used[kv[0]] = map[int16]bool{}
				}
				used[kv[0]][kv[1]] = true
			}
		})
	}
	logUsed(t, used)
}

func logUsed(t *testing.T, used map[int16]map[int16]bool) {
	var keys []int
	for k := range used {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	for _, k := range keys {
		var vs []int
		for v := range used[int16(k)] {
			vs = append(vs, int(v))
		}
		sort.Ints(vs)
		t.Logf("API key %d: versions %v", k, vs)
	}
}
