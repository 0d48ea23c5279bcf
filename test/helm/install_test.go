package helmtest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/pxq-dev/pxq/sources/k8s"
	"github.com/pxq-dev/pxq/sources/k8s/k8stest"
)

// informed is what sources/k8s's informers list and watch (watch.go,
// StartWatch): the service account must be allowed get, list and watch
// on each, and nothing else.
var informed = []schema.GroupResource{
	{Resource: "pods"}, {Resource: "services"}, {Resource: "endpoints"}, {Resource: "namespaces"}, {Resource: "nodes"},
	{Group: "discovery.k8s.io", Resource: "endpointslices"},
	{Group: "apps", Resource: "replicasets"}, {Group: "apps", Resource: "deployments"},
}

// certificateCRD stands in for cert-manager's CRD of Certificates, so
// that the API server accepts the chart's: the schema has the fields the
// chart sets (cert-manager's own CRD has more), and no others are kept.
const certificateCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Certificate, plural: certificates, singular: certificate}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [secretName, issuerRef]
              properties:
                secretName: {type: string}
                duration: {type: string}
                renewBefore: {type: string}
                dnsNames: {type: array, items: {type: string}}
                ipAddresses: {type: array, items: {type: string}}
                usages: {type: array, items: {type: string}}
                issuerRef:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    kind: {type: string}
                    group: {type: string}
`

// TestInstall installs the chart into a real kube-apiserver (RBAC on),
// reads back every object of the release, runs pxq's metadata informers
// as the agents' service account, upgrades (the tokens stay), installs
// a second release with cert-manager and TLS, and uninstalls.
func TestInstall(t *testing.T) {
	c := k8stest.Run(t)
	kubeconfig := c.Kubeconfig(t)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	out := helm(t, "install", "pxq", chartDir, "--namespace", "pxq", "--create-namespace", "--kubeconfig", kubeconfig)
	t.Logf("helm install pxq %s --namespace pxq --create-namespace:\n%s", chartDir, out)
	objs := decode(t, helm(t, "get", "manifest", "pxq", "--namespace", "pxq", "--kubeconfig", kubeconfig))
	if len(objs) != 8 {
		t.Errorf("release objects %v, want the 8 of TestTemplateDefaults", kinds(objs))
	}
	checkAccepted(t, dyn, mapper, objs)

	// The service account may do what the informers do, and no more.
	const sa = "system:serviceaccount:pxq:pxq"
	for _, gr := range informed {
		for _, verb := range []string{"get", "list", "watch"} {
			if !allowed(t, c.Client, sa, verb, gr) {
				t.Errorf("%s may not %s %s", sa, verb, gr)
			}
		}
	}
	for _, deny := range []struct {
		verb string
		gr   schema.GroupResource
	}{
		{"get", schema.GroupResource{Resource: "secrets"}},
		{"list", schema.GroupResource{Resource: "configmaps"}},
		{"create", schema.GroupResource{Resource: "pods"}},
		{"delete", schema.GroupResource{Resource: "pods"}},
		{"update", schema.GroupResource{Group: "apps", Resource: "deployments"}},
		{"list", schema.GroupResource{Group: "apps", Resource: "daemonsets"}},
	} {
		if allowed(t, c.Client, sa, deny.verb, deny.gr) {
			t.Errorf("%s may %s %s: the role grants too much", sa, deny.verb, deny.gr)
		}
	}
	// And pxq's informers, as the service account, sync.
	expiry := int64(3600)
	tok, err := c.Client.CoreV1().ServiceAccounts("pxq").CreateToken(ctx, "pxq",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agentClient, err := kubernetes.NewForConfig(&rest.Config{Host: c.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: c.Config.TLSClientConfig, WarningHandler: rest.NoWarnings{}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	w, err := k8s.Watch(wctx, agentClient, k8s.NewStore(k8s.StoreConfig{}))
	cancel()
	if err != nil {
		t.Fatalf("pxq's informers as %s: %v", sa, err)
	}
	w.Close()

	// An upgrade keeps the generated tokens and follows the store size.
	before, err := c.Client.CoreV1().Secrets("pxq").Get(ctx, "pxq-tokens", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	helm(t, "upgrade", "pxq", chartDir, "--namespace", "pxq", "--kubeconfig", kubeconfig, "--set", "store.size=2Gi")
	after, err := c.Client.CoreV1().Secrets("pxq").Get(ctx, "pxq-tokens", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"agent-token", "api-token"} {
		if string(before.Data[k]) != string(after.Data[k]) || len(after.Data[k]) == 0 {
			t.Errorf("%s %q after the upgrade, %q before: want it kept", k, after.Data[k], before.Data[k])
		}
	}
	ds, err := c.Client.AppsV1().DaemonSets("pxq").Get(ctx, "pxq-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agent := ds.Spec.Template.Spec.Containers[0]
	if lim := agent.Resources.Limits.Memory().Value(); lim != (2<<30)+(512<<20) || !slices.Contains(agent.Args, "--store-size=2147483648") {
		t.Errorf("after the upgrade: memory limit %s, args %v; want 2Gi + 512Mi and --store-size=2147483648", agent.Resources.Limits.Memory(), agent.Args)
	}

	// A second release, in another namespace: cert-manager Certificates,
	// mutual TLS, OTel, a Secret of the user's.
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(certificateCRD), &crd.Object); err != nil {
		t.Fatal(err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := dyn.Resource(crdGVR).Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Certificate CRD to be served", func() bool {
		_, err := dyn.Resource(schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil
	})
	mapper.Reset()
	helm(t, "install", "obs", chartDir, "--namespace", "monitoring", "--create-namespace", "--kubeconfig", kubeconfig, "-f", "testdata/full.yaml")
	obs := decode(t, helm(t, "get", "manifest", "obs", "--namespace", "monitoring", "--kubeconfig", kubeconfig))
	if len(obs) != 9 {
		t.Errorf("release objects %v, want the 9 of TestTemplateValues", kinds(obs))
	}
	checkAccepted(t, dyn, mapper, obs)
	if !allowed(t, c.Client, "system:serviceaccount:monitoring:observer", "watch", schema.GroupResource{Resource: "pods"}) {
		t.Error("the second release's service account may not watch pods")
	}

	// Uninstalling removes every object, cluster-wide ones too.
	helm(t, "uninstall", "pxq", "--namespace", "pxq", "--kubeconfig", kubeconfig, "--wait")
	for _, o := range objs {
		eventually(t, "the removal of "+o.GetKind()+" "+o.GetName(), func() bool {
			_, err := resourceOf(t, dyn, mapper, o).Get(ctx, o.GetName(), metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	}
	if _, err := c.Client.AppsV1().DaemonSets("monitoring").Get(ctx, "obs-pxq-agent", metav1.GetOptions{}); err != nil {
		t.Errorf("the other release's agent after uninstalling pxq: %v", err)
	}
}

// checkAccepted reads back each object of a release and checks that the
// API server holds every field the chart rendered, as rendered (it adds
// defaults and status of its own).
func checkAccepted(t *testing.T, dyn dynamic.Interface, mapper meta.RESTMapper, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		live, err := resourceOf(t, dyn, mapper, o).Get(context.Background(), o.GetName(), metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			continue
		}
		if diff := subset(o.Object, live.Object, ""); diff != "" {
			t.Errorf("%s %s/%s as the API server holds it: %s", o.GetKind(), o.GetNamespace(), o.GetName(), diff)
		}
	}
}

// resourceOf is the dynamic client's handle on o's resource.
func resourceOf(t *testing.T, dyn dynamic.Interface, mapper meta.RESTMapper, o *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("%s: %v", gvk, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	return dyn.Resource(m.Resource)
}

// subset says where want (a rendered object) is not within got (the API
// server's): a field missing or different. Numbers compare by value,
// since YAML and JSON decode them to different types.
func subset(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %T, want an object", path, got)
		}
		for k, v := range w {
			if d := subset(v, g[k], path+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %v, want %v", path, got, want)
		}
		for i := range w {
			if d := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	}
	if wf, ok := number(want); ok {
		if gf, ok := number(got); ok && wf == gf {
			return ""
		}
	} else if reflect.DeepEqual(want, got) {
		return ""
	}
	return fmt.Sprintf("%s: %v, want %v", path, got, want)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	}
	return 0, false
}

// allowed asks the API server whether user may verb resource in every
// namespace (a SubjectAccessReview).
func allowed(t *testing.T, client kubernetes.Interface, user, verb string, gr schema.GroupResource) bool {
	t.Helper()
	r, err := client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Group: gr.Group, Resource: gr.Resource},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview %s %s %s: %v", user, verb, gr, err)
	}
	return r.Status.Allowed
}

// eventually waits up to 20 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
