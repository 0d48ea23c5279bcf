package broker_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/planner"
	"github.com/pxq-dev/pxq/types"
)

// nodeMeta is one node's metadata over brokertest.Meta's names. In host
// mode it knows only its own processes and pods, as a host knows its
// entities; in Kubernetes mode every pod of the cluster, and still only
// its own processes. It counts the lookups it answers.
type nodeMeta struct {
	brokertest.Meta
	asid       uint32
	mode       string
	procs, obj *atomic.Int64
}

func newNodeMeta(asid uint32, mode string) nodeMeta {
	return nodeMeta{asid: asid, mode: mode, procs: new(atomic.Int64), obj: new(atomic.Int64)}
}

func (m nodeMeta) Mode() string { return m.mode }

func (m nodeMeta) Process(u types.UInt128Value) *metadata.Process {
	m.procs.Add(1)
	if u.ASID() != m.asid {
		return nil
	}
	return m.Meta.Process(u)
}

func (m nodeMeta) Pod(uid string) *metadata.Pod {
	m.obj.Add(1)
	var a, p int
	if _, err := fmt.Sscanf(uid, "uid-%d-%d", &a, &p); err != nil || (m.mode != metadata.ModeKubernetes && uint32(a) != m.asid) {
		return nil
	}
	return m.Meta.Pod(uid)
}

func (m nodeMeta) Service(uid string) *metadata.Service {
	m.obj.Add(1)
	return m.Meta.Service(uid)
}

// afterAgg names pods, services and nodes after a groupby on upid: the
// lookups run in the merge fragment, on the broker.
const afterAgg = `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
df = df.groupby('upid').agg(n=('latency', px.count))
df.pod = df.ctx['pod']
df.service = df.ctx['service']
df.node = px.upid_to_node_name(df.upid)
df.cmd = df.ctx['cmdline']
px.display(df.drop('upid'), 'by_process')
`

// metaCluster is two agents with the given metadata, a broker over them
// with own as its metadata, and an embedded engine knowing everything.
func metaCluster(t *testing.T, own metadata.Provider, metas ...nodeMeta) (*broker.Broker, *engine.Engine, time.Time) {
	t.Helper()
	now := time.Now()
	embedded := brokertest.NewEngine(t, brokertest.Meta{}, 0)
	cfg := broker.Config{Meta: own}
	for _, m := range metas {
		eng := brokertest.NewEngine(t, m, m.asid)
		brokertest.FillHTTPEvents(t, []*engine.Engine{eng, embedded}, m.asid, int64(m.asid)*7, 300, now)
		cfg.Agents = append(cfg.Agents, brokertest.StartAgent(t, eng, m.asid).Addr)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, embedded, now
}

func runOn(t *testing.T, b *broker.Broker, embedded *engine.Engine, now time.Time) {
	t.Helper()
	c := &testCluster{broker: b, embedded: embedded, now: now}
	ctx := context.Background()
	q := engine.Query{Script: pxl(afterAgg), Now: now}
	got, info, err := c.runDistributed(ctx, q, distOpts{MaxRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Warnings) > 0 {
		t.Fatalf("warnings %v", info.Warnings)
	}
	want, err := embedded.Collect(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	compareTables(t, got, want, false)
	rows := rowsOf(got[0])
	if len(rows) != 16 { // 8 processes per agent
		t.Fatalf("%d rows, want 16", len(rows))
	}
	for _, r := range rows {
		if fmt.Sprint(r[1]) == "" || fmt.Sprint(r[2]) == "" || fmt.Sprint(r[3]) == "" {
			t.Fatalf("a name is empty: %v", r)
		}
	}
}

// TestMetadataAboveAggregatesFromAgents: a broker without metadata of
// its own names pods, services and nodes computed after an aggregate by
// asking its host-mode agents, each of which knows only its own
// processes and pods; the names equal an engine's that knows them all.
func TestMetadataAboveAggregatesFromAgents(t *testing.T) {
	a1, a2 := newNodeMeta(1, metadata.ModeHost), newNodeMeta(2, metadata.ModeHost)
	b, embedded, now := metaCluster(t, nil, a1, a2)

	// The names are computed in the merge fragment.
	cat, _, err := b.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.CompileLogical(engine.Query{Script: pxl(afterAgg), Now: now}, cat)
	if err != nil {
		t.Fatal(err)
	}
	text, err := planner.Explain(p)
	if err != nil {
		t.Fatal(err)
	}
	if merge := text[strings.Index(text, "== merge fragment"):]; !strings.Contains(merge, "upid_to_pod_name") {
		t.Fatalf("the merge fragment does not name pods:\n%s", text)
	}
	runOn(t, b, embedded, now)
	if a1.procs.Load() == 0 || a2.procs.Load() == 0 {
		t.Errorf("process lookups: agent 1 %d, agent 2 %d; want both asked", a1.procs.Load(), a2.procs.Load())
	}
	// Within lookupTTL, a second query asks nothing again.
	n1, n2 := a1.procs.Load()+a1.obj.Load(), a2.procs.Load()+a2.obj.Load()
	runOn(t, b, embedded, now)
	if m1, m2 := a1.procs.Load()+a1.obj.Load(), a2.procs.Load()+a2.obj.Load(); m1 != n1 || m2 != n2 {
		t.Errorf("the second query asked the agents again: %d→%d, %d→%d lookups", n1, m1, n2, m2)
	}
}

// TestMetadataAboveAggregatesKubernetes: agents in Kubernetes mode all
// know the cluster, so one answers for pods and services; processes
// still go to the agent that traced them.
func TestMetadataAboveAggregatesKubernetes(t *testing.T) {
	a1, a2 := newNodeMeta(1, metadata.ModeKubernetes), newNodeMeta(2, metadata.ModeKubernetes)
	b, embedded, now := metaCluster(t, nil, a1, a2)
	runOn(t, b, embedded, now)
	if a1.obj.Load() > 0 && a2.obj.Load() > 0 {
		t.Errorf("both agents were asked for cluster objects (%d, %d lookups): one answers for the cluster", a1.obj.Load(), a2.obj.Load())
	}
	if a1.procs.Load() == 0 || a2.procs.Load() == 0 {
		t.Errorf("process lookups: agent 1 %d, agent 2 %d; want both asked", a1.procs.Load(), a2.procs.Load())
	}
}

// TestMetadataAboveAggregatesOwnStore: a broker with its own Kubernetes
// metadata answers cluster objects itself and asks the agents only for
// processes.
func TestMetadataAboveAggregatesOwnStore(t *testing.T) {
	own := newNodeMeta(0, metadata.ModeKubernetes)
	a1, a2 := newNodeMeta(1, metadata.ModeKubernetes), newNodeMeta(2, metadata.ModeKubernetes)
	b, embedded, now := metaCluster(t, own, a1, a2)
	runOn(t, b, embedded, now)
	if own.obj.Load() == 0 || a1.obj.Load() != 0 || a2.obj.Load() != 0 {
		t.Errorf("object lookups: broker %d, agents %d and %d; want the broker's own only", own.obj.Load(), a1.obj.Load(), a2.obj.Load())
	}
	if own.procs.Load() != 0 || a1.procs.Load() == 0 || a2.procs.Load() == 0 {
		t.Errorf("process lookups: broker %d, agents %d and %d; want the agents'", own.procs.Load(), a1.procs.Load(), a2.procs.Load())
	}
}
