package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoCluster says that no cluster is configured (no kubeconfig, not in
// a pod): the caller should fall back to host mode. RESTConfig wraps it
// with what it looked for.
var ErrNoCluster = errors.New("k8s: no cluster configuration")

// RESTConfig finds how to reach the API server as kubectl does: the
// kubeconfig file if given, else the files $KUBECONFIG lists, else
// ~/.kube/config, else the in-cluster service account when running in a
// pod. It also says where the configuration came from. Without any it
// returns an error wrapping ErrNoCluster that says what it looked for.
func RESTConfig(kubeconfig string) (cfg *rest.Config, from string, err error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, "", fmt.Errorf("k8s: kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, "kubeconfig " + kubeconfig, nil
	}
	var looked []string
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	var files []string
	for _, p := range rules.Precedence {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	switch env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); {
	case len(files) > 0 && env != "":
		from = "$KUBECONFIG (" + strings.Join(files, ":") + ")"
	case len(files) > 0:
		from = "kubeconfig " + files[0]
	case env != "":
		looked = append(looked, "$KUBECONFIG="+env+" names no file")
	default:
		looked = append(looked, "$KUBECONFIG is unset", "no "+clientcmd.RecommendedHomeFile)
	}
	if len(files) > 0 {
		rules.Precedence = files
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
		switch {
		case err == nil:
			return cfg, from, nil
		case !clientcmd.IsEmptyConfig(err):
			return nil, "", fmt.Errorf("k8s: %s: %w", from, err)
		}
		looked = append(looked, from+" has no current context")
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("k8s: in-cluster config: %w", err)
		}
		return cfg, "in-cluster service account", nil
	}
	looked = append(looked, "not in a pod ($KUBERNETES_SERVICE_HOST is unset)")
	return nil, "", fmt.Errorf("%w: %s", ErrNoCluster, strings.Join(looked, ", "))
}

// AccessError says that the API server refused pxq a verb on a resource:
// the RBAC rules of its identity lack it (deploy/rbac.yaml grants get,
// list and watch on every resource the store follows).
type AccessError struct {
	Verb     string // "list", "watch"
	Resource string // "pods", "endpointslices", …
	Group    string // the API group: "" (core), "apps", "discovery.k8s.io"
	Err      error  // the API server's answer
}

func (e *AccessError) Error() string {
	res := e.Resource
	if e.Group != "" {
		res += "." + e.Group
	}
	return fmt.Sprintf("k8s: forbidden to %s %s in all namespaces; grant get, list and watch on %s (see deploy/rbac.yaml): %v",
		e.Verb, res, res, e.Err)
}

func (e *AccessError) Unwrap() error { return e.Err }

// forbiddenVerb finds the verb in the API server's "User … cannot VERB
// resource …" message.
var forbiddenVerb = regexp.MustCompile(`cannot (\w+) resource`)

// resource is one kind of object the store follows.
type resource struct {
	name, group string
	informer    cache.SharedIndexInformer
	apply       func(any)
	remove      func(any)
}

// explain turns an informer's list or watch failure into an error that
// names what failed: an AccessError for a refusal, the resource
// otherwise.
func (r *resource) explain(err error) error {
	var st apierrors.APIStatus
	switch {
	case apierrors.IsForbidden(err) && errors.As(err, &st):
		verb := "list"
		if m := forbiddenVerb.FindStringSubmatch(st.Status().Message); m != nil {
			verb = m[1]
		} else if r.informer.HasSynced() {
			verb = "watch" // the informer lists first
		}
		return &AccessError{Verb: verb, Resource: r.name, Group: r.group, Err: err}
	case apierrors.IsUnauthorized(err):
		return credentialsError(err)
	}
	return fmt.Errorf("k8s: %s: %w", r.name, err)
}

// credentialsError says that the API server refused who pxq is (401).
func credentialsError(err error) error {
	return fmt.Errorf("k8s: the API server rejected pxq's credentials (check the kubeconfig's user or the service account token): %w", err)
}

// Watcher feeds a Store from the API server through shared informers.
type Watcher struct {
	store   *Store
	factory informers.SharedInformerFactory
	cancel  context.CancelFunc
	done    sync.WaitGroup
	synced  chan struct{}

	mu      sync.Mutex
	lastErr error
}

// Watch starts informers on pods, services, endpoint slices, endpoints,
// namespaces, nodes, replica sets and deployments of every namespace
// (StartWatch) and returns once their caches have synced. ctx bounds only
// that wait, and its end returns the last error the informers met: the
// store then stays current until Close.
func Watch(ctx context.Context, client kubernetes.Interface, store *Store) (*Watcher, error) {
	w, err := StartWatch(client, store, nil)
	if err != nil {
		return nil, err
	}
	select {
	case <-w.Synced():
		return w, nil
	case <-ctx.Done():
	}
	w.Close()
	if err := w.Err(); err != nil {
		return nil, fmt.Errorf("k8s: informers did not sync: %w", err)
	}
	return nil, fmt.Errorf("k8s: informers did not sync: %w", context.Cause(ctx))
}

// StartWatch starts the informers and returns at once. They list and
// watch until Close, retrying with client-go's backoff (0.8 s doubling to
// 30 s) whatever fails; each failure is passed to onError (when not nil)
// as an error that names the resource, an *AccessError when refused.
// Synced is closed once every cache has synced.
func StartWatch(client kubernetes.Interface, store *Store, onError func(error)) (*Watcher, error) {
	runCtx, cancel := context.WithCancel(context.Background())
	w := &Watcher{
		store:   store,
		factory: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripManagedFields)),
		cancel:  cancel,
		synced:  make(chan struct{}),
	}
	core, apps := w.factory.Core().V1(), w.factory.Apps().V1()
	resources := []*resource{
		{"pods", "", core.Pods().Informer(), typed(store.ApplyPod), typed(store.DeletePod)},
		{"services", "", core.Services().Informer(), typed(store.ApplyService), typed(store.DeleteService)},
		{"endpointslices", "discovery.k8s.io", w.factory.Discovery().V1().EndpointSlices().Informer(), typed(store.ApplyEndpointSlice), typed(store.DeleteEndpointSlice)},
		{"endpoints", "", core.Endpoints().Informer(), typed(store.ApplyEndpoints), typed(store.DeleteEndpoints)}, //nolint:staticcheck
		{"namespaces", "", core.Namespaces().Informer(), typed(store.ApplyNamespace), typed(store.DeleteNamespace)},
		{"nodes", "", core.Nodes().Informer(), typed(store.ApplyNode), typed(store.DeleteNode)},
		{"replicasets", "apps", apps.ReplicaSets().Informer(), typed(store.ApplyReplicaSet), typed(store.DeleteReplicaSet)},
		{"deployments", "apps", apps.Deployments().Informer(), typed(store.ApplyDeployment), typed(store.DeleteDeployment)},
	}
	report := func(err error) {
		w.mu.Lock()
		w.lastErr = err
		w.mu.Unlock()
		if onError != nil {
			onError(err)
		}
	}
	for _, r := range resources {
		_, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    r.apply,
			UpdateFunc: func(_, obj any) { r.apply(obj) },
			DeleteFunc: r.remove,
		})
		if err == nil {
			// Replaces client-go's handler, which logs through klog.
			err = r.informer.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return // a watch that ended; the reflector starts another
				}
				report(r.explain(err))
			})
		}
		if err != nil {
			cancel()
			return nil, fmt.Errorf("k8s: watch %s: %w", r.name, err)
		}
	}
	w.factory.Start(runCtx.Done())
	w.done.Add(3)
	go w.probe(runCtx, client, report)
	go func() {
		defer w.done.Done()
		for _, ok := range w.factory.WaitForCacheSync(runCtx.Done()) {
			if !ok {
				return // closed before the sync
			}
		}
		close(w.synced)
	}()
	go w.prune(runCtx)
	return w, nil
}

// probe asks the API server for its version until the caches sync,
// reporting each failure: informers that list through watches
// (client-go's default) retry an unreachable server among themselves
// and never say so. It backs off as they do.
func (w *Watcher) probe(ctx context.Context, client kubernetes.Interface, report func(error)) {
	defer w.done.Done()
	rc := client.Discovery().RESTClient()
	if rc == nil {
		return
	}
	delay := probeFirst
	for {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := rc.Get().AbsPath("/version").Do(pctx).Error()
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case apierrors.IsUnauthorized(err):
			report(credentialsError(err))
		case err != nil:
			report(fmt.Errorf("k8s: the API server is unreachable: %w", err))
		default:
			delay = probeFirst // it answers; the informers report the rest
		}
		select {
		case <-w.synced:
			return
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, probeMax)
	}
}

// The probe's backoff and timeout.
const (
	probeFirst   = time.Second
	probeMax     = 30 * time.Second
	probeTimeout = 5 * time.Second
)

// Synced is closed once every informer's cache has synced: the store
// holds the cluster's objects.
func (w *Watcher) Synced() <-chan struct{} { return w.synced }

// Err returns the last error an informer met, nil if none.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// prune drops expired history every minute.
func (w *Watcher) prune(ctx context.Context) {
	defer w.done.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.store.Prune()
		}
	}
}

// Close stops the informers and waits for them.
func (w *Watcher) Close() {
	w.cancel() // Shutdown waits for the stop channel given to Start.
	w.factory.Shutdown()
	w.done.Wait()
}

// typed adapts a store method to an informer callback, unwrapping the
// tombstone a delete may arrive in.
func typed[T any](f func(T)) func(any) {
	return func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if v, ok := obj.(T); ok {
			f(v)
		}
	}
}

// stripManagedFields drops what the store never reads before the
// informer caches an object.
func stripManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			delete(a, corev1.LastAppliedConfigAnnotation)
		}
	}
	return obj, nil
}
