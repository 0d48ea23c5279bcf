package k8s

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pxq-dev/pxq/metadata"
)

// ErrNoCluster says that neither an in-cluster service account nor a
// kubeconfig was found: the caller should fall back to host mode.
var ErrNoCluster = errors.New("k8s: no cluster configuration (not in a pod, no kubeconfig)")

// RESTConfig finds how to reach the API server: kubeconfig if given, else
// the in-cluster service account when running in a pod, else $KUBECONFIG
// or ~/.kube/config. It returns ErrNoCluster when there is none.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("k8s: kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("k8s: in-cluster config: %w", err)
		}
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	found := false
	for _, p := range rules.Precedence {
		if _, err := os.Stat(p); err == nil {
			found = true
		}
	}
	if !found {
		return nil, ErrNoCluster
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("k8s: kubeconfig: %w", err)
	}
	return cfg, nil
}

// Watcher feeds a Store from the API server through shared informers.
type Watcher struct {
	store   *Store
	factory informers.SharedInformerFactory
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// Watch starts informers on pods, services, endpoint slices, endpoints,
// namespaces, nodes, replica sets and deployments of every namespace,
// and returns once their caches have synced. ctx bounds only that wait:
// the store then stays current until Close.
func Watch(ctx context.Context, client kubernetes.Interface, store *Store) (*Watcher, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &Watcher{
		store:   store,
		factory: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripManagedFields)),
		cancel:  cancel,
	}
	core, apps := w.factory.Core().V1(), w.factory.Apps().V1()
	type registration struct {
		name     string
		informer cache.SharedIndexInformer
		apply    func(any)
		remove   func(any)
	}
	regs := []registration{
		{"pods", core.Pods().Informer(), typed(store.ApplyPod), typed(store.DeletePod)},
		{"services", core.Services().Informer(), typed(store.ApplyService), typed(store.DeleteService)},
		{"endpointslices", w.factory.Discovery().V1().EndpointSlices().Informer(), typed(store.ApplyEndpointSlice), typed(store.DeleteEndpointSlice)},
		{"endpoints", core.Endpoints().Informer(), typed(store.ApplyEndpoints), typed(store.DeleteEndpoints)}, //nolint:staticcheck
		{"namespaces", core.Namespaces().Informer(), typed(store.ApplyNamespace), typed(store.DeleteNamespace)},
		{"nodes", core.Nodes().Informer(), typed(store.ApplyNode), typed(store.DeleteNode)},
		{"replicasets", apps.ReplicaSets().Informer(), typed(store.ApplyReplicaSet), typed(store.DeleteReplicaSet)},
		{"deployments", apps.Deployments().Informer(), typed(store.ApplyDeployment), typed(store.DeleteDeployment)},
	}
	for _, r := range regs {
		_, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    r.apply,
			UpdateFunc: func(_, obj any) { r.apply(obj) },
			DeleteFunc: r.remove,
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("k8s: watch %s: %w", r.name, err)
		}
	}
	w.factory.Start(runCtx.Done())
	for typ, ok := range w.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			w.Close()
			return nil, fmt.Errorf("k8s: informer for %v did not sync (missing RBAC permissions?): %w", typ, context.Cause(ctx))
		}
	}
	w.done.Add(1)
	go w.prune(runCtx)
	return w, nil
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

// Open returns the metadata provider of this machine: a Store kept
// current from the cluster when one is configured (see RESTConfig), else
// metadata.Host. stop ends the watch. ctx bounds the initial sync.
func Open(ctx context.Context, kubeconfig string, cfg StoreConfig) (p metadata.Provider, stop func(), err error) {
	rc, err := RESTConfig(kubeconfig)
	if errors.Is(err, ErrNoCluster) {
		h, err := metadata.NewHost()
		if err != nil {
			return nil, nil, err
		}
		return h, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	// The Endpoints informer would log "v1 Endpoints is deprecated" on
	// every list and watch.
	rc.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("k8s: client: %w", err)
	}
	store := NewStore(cfg)
	w, err := Watch(ctx, client, store)
	if err != nil {
		return nil, nil, err
	}
	return store, w.Close, nil
}
