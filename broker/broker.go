// Package broker is pxq's query broker: it learns the tables of its
// agents, plans scripts against the union of their schemas, splits each
// plan (planner.Split), sends the node fragment to every agent that holds
// the tables it scans, and runs the merge fragment over the agents'
// streams as they arrive. It is a distributed query.Backend: the public
// services and the web UI run queries on it through package query.
//
// Faults: an agent that is down, fails, or has not finished when the
// query's agent deadline passes (a little before the query's own
// deadline, to leave time to merge) is left out, and the query's result
// carries a warning naming it — or fails, when the caller asked for all
// or nothing. Rows an agent sent before failing are kept. Cancelling the
// query cancels the fragment on every agent.
//
// Back-pressure: each bridge has a bounded channel between the agents'
// streams and the merge; when the consumer is slow the channel fills,
// the stream readers stop reading, gRPC flow control stops the agents'
// sends, and the agents' executors wait. Nothing buffers without bound.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/pxq-dev/pxq/api/agentpb"
	"github.com/pxq-dev/pxq/api/relation"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/exec"
	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/server/auth"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Defaults of Config's zero fields.
const (
	DefaultQueryTimeout = 30 * time.Second
	DefaultInfoTimeout  = 2 * time.Second
	DefaultCatalogTTL   = time.Second
	// DefaultBridgeBuffer is how many batches wait between the agents'
	// streams and the merge, per bridge.
	DefaultBridgeBuffer = 4
	// MaxRecvBytes bounds one message from an agent.
	MaxRecvBytes = 64 << 20
)

// Config configures a broker.
type Config struct {
	// Agents are the agents' addresses (host:port).
	Agents []string
	// Discover, when set, lists the agents' addresses anew each time
	// the catalog is refreshed (e.g. the addresses behind a Kubernetes
	// headless Service, see DNSDiscovery); Agents is then ignored.
	Discover func(ctx context.Context) ([]string, error)
	// Dial secures the connections to the agents.
	Dial auth.ClientConfig
	// Meta is the broker's own metadata (its Kubernetes store, with
	// --kubeconfig or in a pod); nil for none. The metadata functions
	// that run on the broker (those above the first blocking operator)
	// answer cluster objects from it when it is in Kubernetes mode (it
	// has Mode() == metadata.ModeKubernetes), and ask the agents for
	// everything else (see metadata.go).
	Meta metadata.Provider
	// QueryTimeout bounds a query whose caller set no deadline.
	QueryTimeout time.Duration
	// InfoTimeout bounds the call that asks an agent for its tables.
	InfoTimeout time.Duration
	// CatalogTTL is how long the agents' tables are cached.
	CatalogTTL time.Duration
	// BridgeBuffer is the capacity of each bridge's channel.
	BridgeBuffer int
	// Log receives warnings; slog.Default() when nil.
	Log *slog.Logger
}

// Broker plans and runs queries over agents. It is safe for concurrent
// use; Close releases its connections.
type Broker struct {
	cfg      Config
	dialOpts []grpc.DialOption
	host     string

	meta *agentMetadata

	mu       sync.Mutex
	agents   map[string]*agentConn
	catalog  *catalog
	loadedAt time.Time
}

// agentConn is the connection to one agent.
type agentConn struct {
	addr   string
	conn   *grpc.ClientConn
	client agentpb.AgentServiceClient
}

// New returns a broker for the agents of cfg. It dials lazily: agents
// need not be up yet.
func New(cfg Config) (*Broker, error) {
	if len(cfg.Agents) == 0 && cfg.Discover == nil {
		return nil, fmt.Errorf("broker: no agents")
	}
	if cfg.Meta == nil {
		cfg.Meta = metadata.None{}
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.InfoTimeout <= 0 {
		cfg.InfoTimeout = DefaultInfoTimeout
	}
	if cfg.CatalogTTL == 0 {
		cfg.CatalogTTL = DefaultCatalogTTL
	}
	if cfg.BridgeBuffer <= 0 {
		cfg.BridgeBuffer = DefaultBridgeBuffer
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	dialOpts, err := cfg.Dial.DialOptions()
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	dialOpts = append(dialOpts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxRecvBytes)))
	b := &Broker{cfg: cfg, dialOpts: dialOpts, agents: map[string]*agentConn{}}
	b.host, _ = os.Hostname()
	b.meta = newAgentMetadata(b, cfg.Meta)
	if cfg.Discover == nil {
		if _, err := b.setAgents(cfg.Agents); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Metadata is the provider of the broker's metadata functions: its own
// for the cluster's objects when it knows the cluster, else its agents'.
func (b *Broker) Metadata() metadata.Provider { return b.meta }

// Close closes the connections to the agents.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for addr, a := range b.agents {
		a.conn.Close()
		delete(b.agents, addr)
	}
	return nil
}

// setAgents makes the broker's agents those of addrs, dialing new ones
// and closing the connections of those that left (their running
// fragments fail, and their queries warn). It returns the agents in
// address order.
func (b *Broker) setAgents(addrs []string) ([]*agentConn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]bool{}
	for _, addr := range addrs {
		want[addr] = true
		if _, ok := b.agents[addr]; ok {
			continue
		}
		conn, err := grpc.NewClient(addr, b.dialOpts...)
		if err != nil {
			return nil, fmt.Errorf("broker: agent %s: %w", addr, err)
		}
		b.agents[addr] = &agentConn{addr: addr, conn: conn, client: agentpb.NewAgentServiceClient(conn)}
	}
	for addr, a := range b.agents {
		if !want[addr] {
			a.conn.Close()
			delete(b.agents, addr)
		}
	}
	out := make([]*agentConn, 0, len(b.agents))
	for _, a := range b.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out, nil
}

// currentAgents lists the agents, discovering them first when the
// broker discovers.
func (b *Broker) currentAgents(ctx context.Context) ([]*agentConn, error) {
	if b.cfg.Discover == nil {
		return b.setAgents(b.cfg.Agents)
	}
	addrs, err := b.cfg.Discover(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: discovering agents: %w", err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("broker: discovery found no agents")
	}
	return b.setAgents(addrs)
}

// catalog is what the agents said about their tables.
type catalog struct {
	tables   tableMap
	agents   []*agentState
	warnings []string
}

// agentState is one agent's answer to Info.
type agentState struct {
	conn   *agentConn
	host   string
	asid   uint32
	mode   string // metadata.ModeKubernetes, ModeHost, ModeNone
	err    error
	tables map[string]types.Relation
}

func (a *agentState) name() string {
	if a.host != "" {
		return fmt.Sprintf("%s (%s)", a.conn.addr, a.host)
	}
	return a.conn.addr
}

// Tables returns the union of the agents' tables, asking them when the
// cached answer is older than CatalogTTL. An agent that does not answer
// is named in a warning; it fails only when no agent answers.
func (b *Broker) Tables(ctx context.Context) (lang.Catalog, []string, error) {
	c, err := b.loadCatalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.tables, c.warnings, nil
}

func (b *Broker) loadCatalog(ctx context.Context) (*catalog, error) {
	b.mu.Lock()
	if b.catalog != nil && time.Since(b.loadedAt) < b.cfg.CatalogTTL {
		c := b.catalog
		b.mu.Unlock()
		return c, nil
	}
	b.mu.Unlock()
	agents, err := b.currentAgents(ctx)
	if err != nil {
		return nil, err
	}
	states := make([]*agentState, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			states[i] = b.info(ctx, a)
		}()
	}
	wg.Wait()
	c := &catalog{tables: tableMap{}, agents: states}
	up := 0
	for _, st := range states {
		if st.err != nil {
			c.warnings = append(c.warnings, fmt.Sprintf("agent %s is unreachable: %v", st.name(), st.err))
			continue
		}
		up++
		names := make([]string, 0, len(st.tables))
		for n := range st.tables {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			rel := st.tables[n]
			if have, ok := c.tables[n]; !ok {
				c.tables[n] = rel
			} else if !sameRelation(have, rel) {
				delete(st.tables, n)
				c.warnings = append(c.warnings, fmt.Sprintf("agent %s: table %s has columns %v, others have %v: left out of queries on it", st.name(), n, rel, have))
			}
		}
	}
	if up == 0 {
		return nil, fmt.Errorf("broker: %w: %s", query.ErrNoAgents, strings.Join(c.warnings, "; "))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.catalog, b.loadedAt = c, time.Now()
	b.mu.Unlock()
	return c, nil
}

func (b *Broker) info(ctx context.Context, a *agentConn) *agentState {
	st := &agentState{conn: a}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.InfoTimeout)
	defer cancel()
	resp, err := a.client.Info(ctx, &agentpb.InfoRequest{})
	if err != nil {
		st.err = err
		return st
	}
	st.host, st.asid, st.mode = resp.GetHostname(), resp.GetAsid(), resp.GetMetadataMode()
	st.tables = map[string]types.Relation{}
	for _, t := range resp.GetTables() {
		rel, err := relation.FromPB(t.GetColumns())
		if err != nil {
			st.err = fmt.Errorf("table %s: %w", t.GetName(), err)
			return st
		}
		st.tables[t.GetName()] = rel
	}
	return st
}

func sameRelation(a, b types.Relation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Type != b[i].Type {
			return false
		}
	}
	return true
}

// execOptions are the executor options of a merge fragment.
func (b *Broker) execOptions(c *query.Compiled, br exec.Bridge) exec.Options {
	return exec.Options{
		Store:           table.NewStore(0),
		Funcs:           &funcs.Context{Now: c.Split.Merge.Now, Meta: b.meta, Hostname: b.host, NumCPU: runtime.NumCPU()},
		MemoryLimit:     c.MemoryLimit,
		MaxRowsPerTable: c.MaxRows,
		Bridge:          br,
		Version:         engine.Version,
		Tracepoints:     b,
	}
}

// tableMap is a lang.Catalog over the agents' relations.
type tableMap map[string]types.Relation

func (m tableMap) Relation(name string) (types.Relation, bool) {
	r, ok := m[name]
	return r, ok
}

func (m tableMap) Tables() []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
