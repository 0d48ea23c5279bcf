package broker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

// The metadata functions of a merge fragment (those above the first
// blocking operator, such as ctx['pod'] after a groupby on upid) run on
// the broker, which traces nothing: it asks the agents (AgentService.
// Lookup). A process is asked of the agent whose ASID its UPID holds.
// Cluster objects (pods, services, …) come from the broker's own
// provider when it is in Kubernetes mode (Config.Meta, e.g. a broker
// with --kubeconfig), else from an agent in Kubernetes mode (every one
// watches the whole cluster, so the first that answers is right), else,
// with agents in host mode, from each agent in turn until one knows the
// entity (host entities belong to one host). Answers are cached for
// lookupTTL.
const (
	lookupTTL = 5 * time.Second
	// downFor is how long an agent whose lookup failed is not asked.
	downFor = 5 * time.Second
	// maxCached bounds the answers kept; past it the cache starts over.
	maxCached = 1 << 16
)

// agentMetadata is the broker's metadata.Provider.
type agentMetadata struct {
	b   *Broker
	own metadata.Provider

	mu    sync.Mutex
	cache map[lookupKey]cachedAnswer
	down  map[string]time.Time // agent address → asked again after
}

type lookupKey struct {
	method, key string
	t           int64
	upid        types.UInt128Value
}

type cachedAnswer struct {
	v  any
	at time.Time
}

func newAgentMetadata(b *Broker, own metadata.Provider) *agentMetadata {
	return &agentMetadata{b: b, own: own, cache: map[lookupKey]cachedAnswer{}, down: map[string]time.Time{}}
}

// cluster is the broker's own provider when it knows the cluster, else
// nil.
func (m *agentMetadata) cluster() metadata.Provider {
	if p, ok := m.own.(interface{ Mode() string }); ok && p.Mode() == metadata.ModeKubernetes {
		return m.own
	}
	return nil
}

// route lists the agents to ask k, in order. authoritative says that
// the first answer, empty included, is the answer (a process's own
// agent, or an agent that watches the cluster).
func (m *agentMetadata) route(k lookupKey) (agents []*agentState, authoritative bool) {
	ctx, cancel := context.WithTimeout(context.Background(), m.b.cfg.InfoTimeout)
	defer cancel()
	c, err := m.b.loadCatalog(ctx)
	if err != nil {
		return nil, false
	}
	var kube, rest []*agentState
	for _, a := range c.agents {
		switch {
		case a.err != nil:
		case k.method == "Process":
			if a.asid == k.upid.ASID() {
				return []*agentState{a}, true
			}
		case a.mode == metadata.ModeKubernetes:
			kube = append(kube, a)
		default:
			rest = append(rest, a)
		}
	}
	if len(kube) > 0 {
		return kube, true
	}
	return rest, false
}

// lookup answers k from the cache or the agents, decoding an answer
// with decode.
func (m *agentMetadata) lookup(k lookupKey, decode func([]byte) (any, error)) any {
	now := time.Now()
	m.mu.Lock()
	if c, ok := m.cache[k]; ok && now.Sub(c.at) < lookupTTL {
		m.mu.Unlock()
		return c.v
	}
	m.mu.Unlock()
	agents, authoritative := m.route(k)
	var v any
	failed := false
	for _, a := range agents {
		b, err := m.ask(a, k)
		if err != nil {
			failed = true
			continue
		}
		if len(b) > 0 {
			if v, err = decode(b); err != nil {
				m.b.cfg.Log.Warn("broker: bad metadata answer", "agent", a.name(), "method", k.method, "err", err)
				v = nil
			}
		}
		if v != nil || authoritative {
			failed = false
			break
		}
	}
	if !failed {
		m.mu.Lock()
		if len(m.cache) >= maxCached {
			clear(m.cache)
		}
		m.cache[k] = cachedAnswer{v: v, at: now}
		m.mu.Unlock()
	}
	return v
}

// ask sends k to one agent, unless it failed a moment ago.
func (m *agentMetadata) ask(a *agentState, k lookupKey) ([]byte, error) {
	addr := a.conn.addr
	m.mu.Lock()
	until := m.down[addr]
	m.mu.Unlock()
	if time.Now().Before(until) {
		return nil, errAgentDown
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.b.cfg.InfoTimeout)
	defer cancel()
	req := &agentpb.LookupRequest{Method: k.method, Key: k.key, TimeNs: k.t}
	if k.method == "Process" {
		req.Upid = k.upid.Bytes()
	}
	resp, err := a.conn.client.Lookup(ctx, req)
	if err != nil {
		m.mu.Lock()
		m.down[addr] = time.Now().Add(downFor)
		m.mu.Unlock()
		m.b.cfg.Log.Warn("broker: metadata lookup failed; names from this agent are empty for a while", "agent", a.name(), "for", downFor, "err", err)
		return nil, err
	}
	return resp.GetJson(), nil
}

var errAgentDown = errors.New("broker: the agent's last lookup failed")

// object is an object lookup of type T: the broker's own answer when it
// knows the cluster, else the agents'.
func object[T any](m *agentMetadata, method, key string, t int64, local func(metadata.Provider) *T) *T {
	if key == "" {
		return nil
	}
	if p := m.cluster(); p != nil {
		return local(p)
	}
	v, _ := m.lookup(lookupKey{method: method, key: key, t: t}, decodeOne[T]).(*T)
	return v
}

func decodeOne[T any](b []byte) (any, error) {
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Process asks the agent that traced the process.
func (m *agentMetadata) Process(upid types.UInt128Value) *metadata.Process {
	if upid == (types.UInt128Value{}) {
		return nil
	}
	v, _ := m.lookup(lookupKey{method: "Process", upid: upid}, func(b []byte) (any, error) {
		p := new(metadata.Process)
		if err := json.Unmarshal(b, p); err != nil {
			return nil, err
		}
		p.UPID = upid // not in the JSON form
		return p, nil
	}).(*metadata.Process)
	return v
}

func (m *agentMetadata) Pod(uid string) *metadata.Pod {
	return object(m, "Pod", uid, 0, func(p metadata.Provider) *metadata.Pod { return p.Pod(uid) })
}

func (m *agentMetadata) PodByName(nsName string) *metadata.Pod {
	return object(m, "PodByName", nsName, 0, func(p metadata.Provider) *metadata.Pod { return p.PodByName(nsName) })
}

func (m *agentMetadata) PodByIP(ip string, t int64) *metadata.Pod {
	return object(m, "PodByIP", ip, t, func(p metadata.Provider) *metadata.Pod { return p.PodByIP(ip, t) })
}

func (m *agentMetadata) IPHistory(ip string) []metadata.IPLease {
	if ip == "" {
		return nil
	}
	if p := m.cluster(); p != nil {
		return p.IPHistory(ip)
	}
	v, _ := m.lookup(lookupKey{method: "IPHistory", key: ip}, func(b []byte) (any, error) {
		var l []metadata.IPLease
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, err
		}
		return l, nil
	}).([]metadata.IPLease)
	return v
}

func (m *agentMetadata) Service(uid string) *metadata.Service {
	return object(m, "Service", uid, 0, func(p metadata.Provider) *metadata.Service { return p.Service(uid) })
}

func (m *agentMetadata) ServiceByName(nsName string) *metadata.Service {
	return object(m, "ServiceByName", nsName, 0, func(p metadata.Provider) *metadata.Service { return p.ServiceByName(nsName) })
}

func (m *agentMetadata) ServiceByIP(ip string) *metadata.Service {
	return object(m, "ServiceByIP", ip, 0, func(p metadata.Provider) *metadata.Service { return p.ServiceByIP(ip) })
}

func (m *agentMetadata) ReplicaSet(uid string) *metadata.ReplicaSet {
	return object(m, "ReplicaSet", uid, 0, func(p metadata.Provider) *metadata.ReplicaSet { return p.ReplicaSet(uid) })
}

func (m *agentMetadata) ReplicaSetByName(nsName string) *metadata.ReplicaSet {
	return object(m, "ReplicaSetByName", nsName, 0, func(p metadata.Provider) *metadata.ReplicaSet { return p.ReplicaSetByName(nsName) })
}

func (m *agentMetadata) Deployment(uid string) *metadata.Deployment {
	return object(m, "Deployment", uid, 0, func(p metadata.Provider) *metadata.Deployment { return p.Deployment(uid) })
}

func (m *agentMetadata) DeploymentByName(nsName string) *metadata.Deployment {
	return object(m, "DeploymentByName", nsName, 0, func(p metadata.Provider) *metadata.Deployment { return p.DeploymentByName(nsName) })
}

func (m *agentMetadata) Container(id string) *metadata.Container {
	return object(m, "Container", id, 0, func(p metadata.Provider) *metadata.Container { return p.Container(id) })
}

func (m *agentMetadata) ContainerByName(name string) *metadata.Container {
	return object(m, "ContainerByName", name, 0, func(p metadata.Provider) *metadata.Container { return p.ContainerByName(name) })
}

func (m *agentMetadata) Namespace(name string) *metadata.Namespace {
	return object(m, "Namespace", name, 0, func(p metadata.Provider) *metadata.Namespace { return p.Namespace(name) })
}

func (m *agentMetadata) Node(name string) *metadata.Node {
	return object(m, "Node", name, 0, func(p metadata.Provider) *metadata.Node { return p.Node(name) })
}

// Hostname is the broker's host.
func (m *agentMetadata) Hostname() string { return m.b.host }

// Names lists the live entities of a kind, for the web UI: the
// cluster's, or every host-mode agent's.
func (m *agentMetadata) Names(kind string) []string {
	if p := m.cluster(); p != nil {
		if n, ok := p.(interface{ Names(string) []string }); ok {
			return n.Names(kind)
		}
	}
	k := lookupKey{method: "Names", key: kind}
	agents, authoritative := m.route(k)
	if authoritative {
		// Any agent of the cluster answers for all.
		v, _ := m.lookup(k, decodeNames).([]string)
		return v
	}
	var all []string
	for _, a := range agents {
		if b, err := m.ask(a, k); err == nil && len(b) > 0 {
			if v, err := decodeNames(b); err == nil {
				all = append(all, v.([]string)...)
			}
		}
	}
	slices.Sort(all)
	return slices.Compact(all)
}

func decodeNames(b []byte) (any, error) {
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

var _ metadata.Provider = (*agentMetadata)(nil)
