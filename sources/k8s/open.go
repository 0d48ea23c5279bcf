package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

// Options configure Open.
type Options struct {
	// Kubeconfig is the kubeconfig file to use; "" looks as kubectl does
	// (RESTConfig).
	Kubeconfig string
	// Store configures the Kubernetes store.
	Store StoreConfig
	// Log hears which metadata is used, the switch to Kubernetes mode and
	// the API server's failures (each at most once a minute); nil
	// discards.
	Log *slog.Logger
}

// problemEvery is how often the same failure of the API server is logged
// again while it lasts.
const problemEvery = time.Minute

// Metadata is the metadata provider of a machine that may be a
// Kubernetes node. Without a cluster configuration it is host mode
// (metadata.Host) for good. With one, it answers in host mode at once
// and switches to the Kubernetes store when the informers have synced:
// an API server that is down or refuses pxq delays the switch, never the
// command, and client-go retries with backoff until it answers. Safe for
// concurrent use.
type Metadata struct {
	host    metadata.Provider // *metadata.Host, or metadata.None without /proc
	store   *Store            // nil without a cluster configuration
	watcher *Watcher
	server  string // the API server's URL
	from    string // where its configuration came from
	reason  string // why host mode for good
	log     *slog.Logger
	start   time.Time

	synced    atomic.Bool
	failed    chan struct{} // closed at the first failure
	closed    chan struct{} // closed by Close
	closeOnce sync.Once

	mu       sync.Mutex
	firstErr error
	logged   map[string]time.Time // failure → when last logged
}

// Open returns the metadata of this machine (see Metadata) and logs
// which it uses. It fails only on a kubeconfig that was given and cannot
// be read; Close stops the watch.
func Open(o Options) (*Metadata, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Metadata{log: log, start: time.Now(), failed: make(chan struct{}), closed: make(chan struct{}), logged: map[string]time.Time{}}
	if h, err := metadata.NewHost(); err != nil {
		log.Warn("metadata: process metadata is off", "err", err)
		m.host = metadata.None{}
	} else {
		m.host = h
	}
	rc, from, err := RESTConfig(o.Kubeconfig)
	if errors.Is(err, ErrNoCluster) {
		m.reason = err.Error()
		log.Info("metadata: host mode", "why", m.reason)
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	// The Endpoints informer would log "v1 Endpoints is deprecated" on
	// every list and watch.
	rc.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("k8s: client for %s: %w", rc.Host, err)
	}
	m.server, m.from = rc.Host, from
	m.store = NewStore(o.Store)
	if m.watcher, err = StartWatch(client, m.store, m.problem); err != nil {
		return nil, err
	}
	log.Info("metadata: host mode until the Kubernetes API server answers", "server", m.server, "from", m.from)
	go m.switchWhenSynced()
	return m, nil
}

// switchWhenSynced makes the store answer once the informers synced.
func (m *Metadata) switchWhenSynced() {
	select {
	case <-m.watcher.Synced():
	case <-m.closed:
		return
	}
	m.synced.Store(true)
	m.log.Info("metadata: Kubernetes mode", "server", m.server, "from", m.from, "node", m.store.NodeName(),
		"pods", len(m.store.Names("pod")), "nodes", len(m.store.Names("node")), "after", time.Since(m.start).Round(time.Millisecond))
}

// problem logs a failure of the API server, each distinct one at most
// once every problemEvery; informers report one per resource and retry.
func (m *Metadata) problem(err error) {
	m.mu.Lock()
	if m.firstErr == nil {
		m.firstErr = err
		close(m.failed)
	}
	key := innermost(err).Error()
	if _, ok := err.(*AccessError); ok {
		key = err.Error() // one per verb and resource
	}
	last, seen := m.logged[key]
	now := time.Now()
	if seen && now.Sub(last) < problemEvery {
		m.mu.Unlock()
		return
	}
	m.logged[key] = now
	m.mu.Unlock()
	if m.synced.Load() {
		m.log.Warn("metadata: Kubernetes API server failed; retrying, the store keeps what it knows", "server", m.server, "err", err)
		return
	}
	m.log.Warn("metadata: host mode: the Kubernetes API server failed; retrying with backoff", "server", m.server, "from", m.from, "err", err)
}

// innermost unwraps err to its first cause: the same for every
// informer when the server is unreachable.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// Wait waits until the Kubernetes store answers, or the API server first
// fails, or ctx ends, whichever comes first. It returns nil in
// Kubernetes mode, else why it is host mode now.
func (m *Metadata) Wait(ctx context.Context) error {
	if m.store == nil {
		return errors.New(m.reason)
	}
	select {
	case <-m.watcher.Synced():
		// switchWhenSynced may not have run yet.
		m.synced.Store(true)
		return nil
	case <-m.failed:
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.firstErr
	case <-ctx.Done():
		return fmt.Errorf("k8s: the API server at %s did not answer within the wait: %w", m.server, context.Cause(ctx))
	}
}

// Close stops the watch.
func (m *Metadata) Close() {
	m.closeOnce.Do(func() {
		close(m.closed)
		if m.watcher != nil {
			m.watcher.Close()
		}
	})
}

// Mode is metadata.ModeKubernetes once the store answers, else
// metadata.ModeHost (metadata.ModeNone without /proc).
func (m *Metadata) Mode() string {
	switch {
	case m.synced.Load():
		return metadata.ModeKubernetes
	}
	if _, none := m.host.(metadata.None); none {
		return metadata.ModeNone
	}
	return metadata.ModeHost
}

// Describe says in a line which metadata answers and why.
func (m *Metadata) Describe() string {
	switch {
	case m.synced.Load():
		return fmt.Sprintf("Kubernetes: API server %s (%s)", m.server, m.from)
	case m.store == nil:
		return "host mode: " + m.reason
	}
	m.mu.Lock()
	err := m.firstErr
	m.mu.Unlock()
	if err != nil {
		return fmt.Sprintf("host mode until the Kubernetes API server %s (%s) answers: %v", m.server, m.from, err)
	}
	return fmt.Sprintf("host mode until the Kubernetes API server %s (%s) answers", m.server, m.from)
}

// Server is the API server's URL, "" without a cluster configuration.
func (m *Metadata) Server() string { return m.server }

// Store is the Kubernetes store once it answers, else nil.
func (m *Metadata) Store() *Store {
	if m.synced.Load() {
		return m.store
	}
	return nil
}

// Record looks a process up now, in host mode and in the Kubernetes
// store, so that it still resolves after it exits whichever mode
// answers later queries. Sources call it for processes they see.
func (m *Metadata) Record(upid types.UInt128Value) {
	m.host.Process(upid)
	if m.store != nil {
		m.store.Process(upid)
	}
}

// current is the provider that answers now.
func (m *Metadata) current() metadata.Provider {
	if m.synced.Load() {
		return m.store
	}
	return m.host
}

// Snapshot describes [start, end] as the provider that answers now does.
func (m *Metadata) Snapshot(start, end int64) *metadata.Snapshot {
	if s, ok := m.current().(metadata.Snapshotter); ok {
		return s.Snapshot(start, end)
	}
	return &metadata.Snapshot{Mode: metadata.ModeNone, Hostname: m.Hostname(), StartNS: start, EndNS: end}
}

// Names lists the live entities of a kind (see Store.Names).
func (m *Metadata) Names(kind string) []string {
	if n, ok := m.current().(interface{ Names(string) []string }); ok {
		return n.Names(kind)
	}
	return nil
}

// The lookups of metadata.Provider answer from the provider of the
// moment: host mode, then the Kubernetes store.

func (m *Metadata) Process(upid types.UInt128Value) *metadata.Process {
	return m.current().Process(upid)
}
func (m *Metadata) Pod(uid string) *metadata.Pod             { return m.current().Pod(uid) }
func (m *Metadata) PodByName(nsName string) *metadata.Pod    { return m.current().PodByName(nsName) }
func (m *Metadata) PodByIP(ip string, t int64) *metadata.Pod { return m.current().PodByIP(ip, t) }
func (m *Metadata) IPHistory(ip string) []metadata.IPLease   { return m.current().IPHistory(ip) }
func (m *Metadata) Service(uid string) *metadata.Service     { return m.current().Service(uid) }
func (m *Metadata) ServiceByName(nsName string) *metadata.Service {
	return m.current().ServiceByName(nsName)
}
func (m *Metadata) ServiceByIP(ip string) *metadata.Service { return m.current().ServiceByIP(ip) }
func (m *Metadata) ReplicaSet(uid string) *metadata.ReplicaSet {
	return m.current().ReplicaSet(uid)
}
func (m *Metadata) ReplicaSetByName(nsName string) *metadata.ReplicaSet {
	return m.current().ReplicaSetByName(nsName)
}
func (m *Metadata) Deployment(uid string) *metadata.Deployment {
	return m.current().Deployment(uid)
}
func (m *Metadata) DeploymentByName(nsName string) *metadata.Deployment {
	return m.current().DeploymentByName(nsName)
}
func (m *Metadata) Container(id string) *metadata.Container { return m.current().Container(id) }
func (m *Metadata) ContainerByName(name string) *metadata.Container {
	return m.current().ContainerByName(name)
}
func (m *Metadata) Namespace(name string) *metadata.Namespace { return m.current().Namespace(name) }
func (m *Metadata) Node(name string) *metadata.Node           { return m.current().Node(name) }
func (m *Metadata) Hostname() string                          { return m.current().Hostname() }

var (
	_ metadata.Provider    = (*Metadata)(nil)
	_ metadata.Snapshotter = (*Metadata)(nil)
)
