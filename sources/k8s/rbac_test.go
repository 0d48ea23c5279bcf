package k8s

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/pxq-dev/pxq/metadata"
)

// TestRBACManifest applies deploy/rbac.yaml piece by piece to a real API
// server and shows that the service account it names may not list pods
// before the binding exists, and can run every informer after.
func TestRBACManifest(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	raw, err := os.ReadFile("../../deploy/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sa *corev1.ServiceAccount
	var role *rbacv1.ClusterRole
	var binding *rbacv1.ClusterRoleBinding
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode rbac.yaml: %v", err)
		}
		switch o := obj.(type) {
		case *corev1.ServiceAccount:
			sa = o
		case *rbacv1.ClusterRole:
			role = o
		case *rbacv1.ClusterRoleBinding:
			binding = o
		default:
			t.Fatalf("unexpected %T in rbac.yaml", obj)
		}
	}
	if sa == nil || role == nil || binding == nil {
		t.Fatal("rbac.yaml lacks a service account, cluster role or binding")
	}
	_, err = c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sa.Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tok, err := c.Client.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: c.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: c.Config.TLSClientConfig, WarningHandler: rest.NoWarnings{}}
	agent, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("before the binding, listing pods gave %v, want Forbidden", err)
	}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the binding to take effect", func() bool {
		_, err := agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		return err == nil
	})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := Watch(wctx, agent, NewStore(StoreConfig{}))
	if err != nil {
		t.Fatalf("informers with the manifest's permissions: %v", err)
	}
	w.Close()
	if _, err := agent.CoreV1().Secrets(sa.Namespace).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing secrets gave %v, want Forbidden: the role grants too much", err)
	}
}

// TestRBACErrorsNameVerbAndResource runs the informers as service
// accounts the API server refuses things: one with no rights at all, and
// one that may list but not watch deployments. Each refusal is an
// AccessError naming the verb and the resource, in the error Wait and
// Watch return and in Open's log.
func TestRBACErrorsNameVerbAndResource(t *testing.T) {
	c := cluster(t)
	ctx := context.Background()
	const ns = "pxq-rbac-verbs"
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		t.Helper()
		if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		expiry := int64(3600)
		tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
			&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Status.Token
	}

	// No rights: every list is refused.
	var log logBuffer
	m, err := Open(Options{Kubeconfig: c.KubeconfigFor(t, token("no-rights")), Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err = m.Wait(wctx)
	cancel()
	var ae *AccessError
	if !errors.As(err, &ae) || ae.Verb != "list" || ae.Resource == "" {
		t.Fatalf("Wait = %v, want an AccessError for list", err)
	}
	if m.Mode() != metadata.ModeHost {
		t.Errorf("mode %s, want host", m.Mode())
	}
	for _, res := range []string{"pods", "services", "endpointslices.discovery.k8s.io", "endpoints", "namespaces", "nodes", "replicasets.apps", "deployments.apps"} {
		want := "forbidden to list " + res + " in all namespaces; grant get, list and watch on " + res
		eventually(t, "a log line for "+res, func() bool { return log.line("level=WARN", want) != "" })
	}
	if strings.Contains(log.String(), "RBAC permissions?") {
		t.Errorf("the log guesses:\n%s", log.String())
	}

	// List but no watch on deployments.
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services", "endpoints", "namespaces", "nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list"}},
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pxq-test-no-watch"}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok := token("no-watch")
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pxq-test-no-watch"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "pxq-test-no-watch"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "no-watch", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(&rest.Config{Host: c.Config.Host, BearerToken: tok, TLSClientConfig: c.Config.TLSClientConfig, WarningHandler: rest.NoWarnings{}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the binding to take effect", func() bool {
		_, err := client.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
		return err == nil
	})
	// The list succeeds (the caches sync); the watch after it is refused.
	errs := make(chan error, 64)
	w, err := StartWatch(client, NewStore(StoreConfig{}), func(err error) {
		select {
		case errs <- err:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case err := <-errs:
			if !errors.As(err, &ae) || ae.Verb != "watch" {
				t.Logf("other error: %v", err)
				continue
			}
			if ae.Resource != "deployments" || ae.Group != "apps" || !strings.Contains(err.Error(), "forbidden to watch deployments.apps in all namespaces") {
				t.Fatalf("refused watch = %v, want one naming watch deployments.apps", err)
			}
			return
		case <-timeout:
			t.Fatalf("no AccessError for watch deployments (last error %v)", w.Err())
		}
	}
}
