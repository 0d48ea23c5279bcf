package helmtest

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestLint runs helm lint --strict on the chart with its defaults and
// with values unlike them in every part.
func TestLint(t *testing.T) {
	for _, args := range [][]string{nil, {"-f", "testdata/full.yaml"}} {
		out := helm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
		if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
			t.Errorf("helm lint %v:\n%s", args, out)
		}
		t.Logf("helm lint --strict %v:\n%s", args, out)
	}
}

// typed converts a rendered object into its client-go type.
func typed[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	v := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, v, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return v
}

// plain reads the objects of a manifest of deploy/.
func plain(t *testing.T, file string) []runtime.Object {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		o, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("deploy/%s: %v", file, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// checkFlags runs the real pxq with the container's arguments and
// --help: pxq refuses an unknown flag or a bad value before it prints
// its help, so the chart passes only flags pxq has.
func checkFlags(t *testing.T, c corev1.Container) {
	t.Helper()
	args := append(slices.Clone(c.Args), "--help")
	if out, err := exec.Command(pxqBin(t), args...).CombinedOutput(); err != nil {
		t.Errorf("pxq %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// missingArgs returns the wanted arguments that args lacks.
func missingArgs(args []string, want ...string) []string {
	var miss []string
	for _, w := range want {
		if !slices.Contains(args, w) {
			miss = append(miss, w)
		}
	}
	return miss
}

// bytesOf is the bytes of a quantity.
func bytesOf(t *testing.T, q string) int64 {
	t.Helper()
	v := resource.MustParse(q)
	return v.Value()
}

// TestTemplateDefaults renders the chart with its defaults and checks it
// against the plain manifests of deploy/ and against pxq's flags.
func TestTemplateDefaults(t *testing.T) {
	objs := decode(t, helm(t, "template", "pxq", chartDir, "--namespace", "pxq"))
	got := kinds(objs)
	slices.Sort(got)
	want := []string{
		"ClusterRole/pxq-pxq-metadata-reader", "ClusterRoleBinding/pxq-pxq-metadata-reader",
		"DaemonSet/pxq-agent", "Deployment/pxq-broker", "Secret/pxq-tokens",
		"Service/pxq-agent", "Service/pxq-broker", "ServiceAccount/pxq",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("objects %v, want %v", got, want)
	}
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" && o.GetNamespace() != "pxq" {
			t.Errorf("%s/%s in namespace %q, want pxq", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}

	// The agent: the plain manifest's privileges and host mounts.
	ds := typed[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", "pxq-agent"))
	var plainDS *appsv1.DaemonSet
	for _, o := range plain(t, "agent.yaml") {
		if d, ok := o.(*appsv1.DaemonSet); ok {
			plainDS = d
		}
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostPID || pod.Containers[0].SecurityContext == nil || pod.Containers[0].SecurityContext.Privileged == nil || !*pod.Containers[0].SecurityContext.Privileged {
		t.Errorf("agent pod: hostPID %v, security context %+v; want host PID and privileged", pod.HostPID, pod.Containers[0].SecurityContext)
	}
	hostPaths := func(p corev1.PodSpec) map[string]string {
		m := map[string]string{}
		mounts := map[string]string{}
		for _, vm := range p.Containers[0].VolumeMounts {
			mounts[vm.Name] = vm.MountPath
		}
		for _, v := range p.Volumes {
			if v.HostPath != nil {
				m[v.HostPath.Path] = mounts[v.Name]
			}
		}
		return m
	}
	if got, want := hostPaths(pod), hostPaths(plainDS.Spec.Template.Spec); !mapsEqual(got, want) {
		t.Errorf("agent host mounts %v, want deploy/agent.yaml's %v", got, want)
	}
	if pod.ServiceAccountName != "pxq" || !slices.ContainsFunc(pod.Tolerations, func(tl corev1.Toleration) bool { return tl.Operator == corev1.TolerationOpExists }) {
		t.Errorf("agent pod: service account %q, tolerations %v", pod.ServiceAccountName, pod.Tolerations)
	}

	// Its memory limit: the store's default size (1Gi) + 512Mi.
	agent := pod.Containers[0]
	if lim := agent.Resources.Limits.Memory().Value(); lim != bytesOf(t, "1Gi")+bytesOf(t, "512Mi") {
		t.Errorf("agent memory limit %s, want 1Gi + 512Mi", agent.Resources.Limits.Memory())
	}
	if miss := missingArgs(agent.Args, "agent", "--store-size=1073741824", "--retention=24h", "--token-file=/etc/pxq/tokens/agent-token"); miss != nil {
		t.Errorf("agent args %v lack %v", agent.Args, miss)
	}
	checkFlags(t, agent)

	// The broker finds the agents through the headless Service.
	dep := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "pxq-broker"))
	broker := dep.Spec.Template.Spec.Containers[0]
	if miss := missingArgs(broker.Args, "broker", "--agents-dns=pxq-agent.pxq.svc:50052", "--http=:7474", "--token-file=/etc/pxq/tokens/api-token", "--agent-token-file=/etc/pxq/tokens/agent-token"); miss != nil {
		t.Errorf("broker args %v lack %v", broker.Args, miss)
	}
	checkFlags(t, broker)
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("broker pod security context %+v, want non-root", sc)
	}
	agentSvc := typed[corev1.Service](t, find(t, objs, "Service", "pxq-agent"))
	if agentSvc.Spec.ClusterIP != corev1.ClusterIPNone || !mapsEqual(agentSvc.Spec.Selector, ds.Spec.Template.Labels) {
		t.Errorf("agent Service: cluster IP %q, selector %v; want headless over the agents' labels %v", agentSvc.Spec.ClusterIP, agentSvc.Spec.Selector, ds.Spec.Template.Labels)
	}
	brokerSvc := typed[corev1.Service](t, find(t, objs, "Service", "pxq-broker"))
	var ports []string
	for _, p := range brokerSvc.Spec.Ports {
		ports = append(ports, p.Name+":"+p.TargetPort.String())
	}
	if !slices.Equal(ports, []string{"grpc:grpc", "http:http"}) || !mapsEqual(brokerSvc.Spec.Selector, dep.Spec.Template.Labels) {
		t.Errorf("broker Service: ports %v selector %v", ports, brokerSvc.Spec.Selector)
	}

	// RBAC: exactly deploy/rbac.yaml's rules.
	role := typed[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "pxq-pxq-metadata-reader"))
	for _, o := range plain(t, "rbac.yaml") {
		if r, ok := o.(*rbacv1.ClusterRole); ok && !slices.EqualFunc(role.Rules, r.Rules, rulesEqual) {
			t.Errorf("chart's rules %v, deploy/rbac.yaml's %v", role.Rules, r.Rules)
		}
	}

	// Two fresh random tokens.
	sec := typed[corev1.Secret](t, find(t, objs, "Secret", "pxq-tokens"))
	a, b := string(sec.Data["agent-token"]), string(sec.Data["api-token"])
	if len(a) < 32 || len(b) < 32 || a == b {
		t.Errorf("tokens %q and %q: want two different ones of 32 characters or more", a, b)
	}
	again := decode(t, helm(t, "template", "pxq", chartDir, "--namespace", "pxq"))
	if a2 := typed[corev1.Secret](t, find(t, again, "Secret", "pxq-tokens")).Data["agent-token"]; string(a2) == a {
		t.Errorf("two renders gave the same agent token %q: not random", a)
	}
}

// TestTemplateValues renders testdata/full.yaml, whose values differ
// from the defaults in every part the chart computes, as release obs in
// namespace monitoring.
func TestTemplateValues(t *testing.T) {
	objs := decode(t, helm(t, "template", "obs", chartDir, "--namespace", "monitoring", "-f", "testdata/full.yaml"))
	got := kinds(objs)
	slices.Sort(got)
	// existingSecret: no Secret of the chart's; cert-manager: two Certificates.
	want := []string{
		"Certificate/obs-pxq-agent", "Certificate/obs-pxq-api",
		"ClusterRole/obs-pxq-monitoring-metadata-reader", "ClusterRoleBinding/obs-pxq-monitoring-metadata-reader",
		"DaemonSet/obs-pxq-agent", "Deployment/obs-pxq-broker",
		"Service/obs-pxq-agent", "Service/obs-pxq-broker", "ServiceAccount/observer",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("objects %v, want %v", got, want)
	}
	ds := typed[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", "obs-pxq-agent"))
	agent := ds.Spec.Template.Spec.Containers[0]
	if agent.Image != "registry.example/pxq:v9.9.9" {
		t.Errorf("image %q", agent.Image)
	}
	if lim := agent.Resources.Limits.Memory().Value(); lim != bytesOf(t, "4Gi")+bytesOf(t, "768Mi") {
		t.Errorf("agent memory limit %s, want 4Gi + 768Mi", agent.Resources.Limits.Memory())
	}
	if miss := missingArgs(agent.Args, "--listen=:6000", "--store-size=4294967296", "--retention=6h",
		"--tls-cert=/etc/pxq/agent-tls/tls.crt", "--tls-key=/etc/pxq/agent-tls/tls.key", "--tls-client-ca=/etc/pxq/agent-tls/ca.crt",
		"--otel-endpoint=grpc://otel-collector.monitoring:4317", "--otel-header=authorization=Bearer abc", "--otel-interval=30s",
		"--otel-script=px/http_request_stats", "--query-memory=256MiB"); miss != nil {
		t.Errorf("agent args %v lack %v", agent.Args, miss)
	}
	if slices.Contains(agent.Args, "--otel-script=px/otel_request_spans") {
		t.Errorf("agent args %v run the broker's export script", agent.Args)
	}
	checkFlags(t, agent)
	if v := volume(ds.Spec.Template.Spec, "tokens"); v.Secret == nil || v.Secret.SecretName != "my-tokens" {
		t.Errorf("agent token volume %+v, want Secret my-tokens", v)
	}
	if v := volume(ds.Spec.Template.Spec, "agent-tls"); v.Secret == nil || v.Secret.SecretName != "obs-pxq-agent-tls" {
		t.Errorf("agent TLS volume %+v, want Secret obs-pxq-agent-tls", v)
	}

	dep := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "obs-pxq-broker"))
	broker := dep.Spec.Template.Spec.Containers[0]
	if miss := missingArgs(broker.Args, "--listen=:6001", "--agents-dns=obs-pxq-agent.monitoring.svc:6000", "--query-timeout=45s", "--http=",
		"--tls-cert=/etc/pxq/api-tls/tls.crt", "--tls-key=/etc/pxq/api-tls/tls.key",
		"--agent-ca=/etc/pxq/agent-tls/ca.crt", "--agent-cert=/etc/pxq/agent-tls/tls.crt", "--agent-key=/etc/pxq/agent-tls/tls.key",
		"--agent-server-name=obs-pxq-agent.monitoring.svc", "--otel-script=px/otel_request_spans"); miss != nil {
		t.Errorf("broker args %v lack %v", broker.Args, miss)
	}
	checkFlags(t, broker)
	if *dep.Spec.Replicas != 2 || dep.Spec.Template.Spec.ServiceAccountName != "observer" {
		t.Errorf("broker: %d replicas, service account %q", *dep.Spec.Replicas, dep.Spec.Template.Spec.ServiceAccountName)
	}
	if v := volume(dep.Spec.Template.Spec, "api-tls"); v.Secret == nil || v.Secret.SecretName != "obs-pxq-api-tls" {
		t.Errorf("broker API TLS volume %+v, want Secret obs-pxq-api-tls", v)
	}
	svc := typed[corev1.Service](t, find(t, objs, "Service", "obs-pxq-broker"))
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 6001 {
		t.Errorf("broker Service %s with ports %v, want a LoadBalancer on 6001 only (no UI)", svc.Spec.Type, svc.Spec.Ports)
	}

	// The Certificates: the API's for its given names, the agents' for
	// the name the broker checks, client and server both.
	api := find(t, objs, "Certificate", "obs-pxq-api")
	if names, _, _ := unstructured.NestedStringSlice(api.Object, "spec", "dnsNames"); !slices.Equal(names, []string{"pxq.example.com"}) {
		t.Errorf("API certificate names %v", names)
	}
	if sn, _, _ := unstructured.NestedString(api.Object, "spec", "secretName"); sn != "obs-pxq-api-tls" {
		t.Errorf("API certificate's secret %q", sn)
	}
	ag := find(t, objs, "Certificate", "obs-pxq-agent")
	names, _, _ := unstructured.NestedStringSlice(ag.Object, "spec", "dnsNames")
	usages, _, _ := unstructured.NestedStringSlice(ag.Object, "spec", "usages")
	issuer, _, _ := unstructured.NestedStringMap(ag.Object, "spec", "issuerRef")
	if !slices.Equal(names, []string{"obs-pxq-agent.monitoring.svc"}) || !slices.Equal(usages, []string{"server auth", "client auth"}) ||
		issuer["name"] != "pxq-ca" || issuer["kind"] != "ClusterIssuer" {
		t.Errorf("agent certificate: names %v usages %v issuer %v", names, usages, issuer)
	}
}

// TestTemplateOverrides: a memory limit given wins over the derived
// one, and TLS from given Secrets makes no Certificate.
func TestTemplateOverrides(t *testing.T) {
	objs := decode(t, helm(t, "template", "pxq", chartDir, "-n", "pxq",
		"--set", "agent.resources.limits.memory=3Gi", "--set", "agent.resources.limits.cpu=2",
		"--set", "tls.api.enabled=true", "--set", "tls.api.secretName=my-api-cert",
		"--set", "tls.agents.enabled=true", "--set", "tls.agents.secretName=my-agent-cert"))
	agent := typed[appsv1.DaemonSet](t, find(t, objs, "DaemonSet", "pxq-agent")).Spec.Template.Spec.Containers[0]
	if m, c := agent.Resources.Limits.Memory().String(), agent.Resources.Limits.Cpu().String(); m != "3Gi" || c != "2" {
		t.Errorf("agent limits memory %s cpu %s, want the given 3Gi and 2", m, c)
	}
	for _, o := range objs {
		if o.GetKind() == "Certificate" {
			t.Errorf("a Certificate %s without cert-manager", o.GetName())
		}
	}
	dep := typed[appsv1.Deployment](t, find(t, objs, "Deployment", "pxq-broker"))
	if v := volume(dep.Spec.Template.Spec, "api-tls"); v.Secret == nil || v.Secret.SecretName != "my-api-cert" {
		t.Errorf("broker API TLS volume %+v, want Secret my-api-cert", v)
	}
	if v := volume(dep.Spec.Template.Spec, "agent-tls"); v.Secret == nil || v.Secret.SecretName != "my-agent-cert" {
		t.Errorf("broker agent TLS volume %+v, want Secret my-agent-cert", v)
	}
}

// TestTemplateCertificateNames: without names of the user's, the API's
// certificate is for the broker Service's names and for kubectl
// port-forward's end (localhost, 127.0.0.1), where NOTES.txt connects.
func TestTemplateCertificateNames(t *testing.T) {
	objs := decode(t, helm(t, "template", "pxq", chartDir, "-n", "pxq",
		"--set", "tls.api.enabled=true", "--set", "tls.certManager.enabled=true", "--set", "tls.certManager.issuerRef.name=ca"))
	api := find(t, objs, "Certificate", "pxq-api")
	names, _, _ := unstructured.NestedStringSlice(api.Object, "spec", "dnsNames")
	ips, _, _ := unstructured.NestedStringSlice(api.Object, "spec", "ipAddresses")
	want := []string{"pxq-broker", "pxq-broker.pxq", "pxq-broker.pxq.svc", "pxq-broker.pxq.svc.cluster.local", "localhost"}
	if !slices.Equal(names, want) || !slices.Equal(ips, []string{"127.0.0.1"}) {
		t.Errorf("API certificate: names %v, addresses %v; want %v and 127.0.0.1", names, ips, want)
	}
	for _, o := range objs {
		if o.GetKind() == "Certificate" && o.GetName() != "pxq-api" {
			t.Errorf("Certificate %s without tls.agents.enabled", o.GetName())
		}
	}
}

// TestTemplateRejects: values the chart cannot use fail the render with
// a message that names them.
func TestTemplateRejects(t *testing.T) {
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"store.size=1GB"}, `"1GB" is not a size in bytes or in Ki, Mi, Gi or Ti`},
		{[]string{"store.memoryOverhead=lots"}, `"lots" is not a size`},
		{[]string{"tls.api.enabled=true"}, "tls.api.enabled needs tls.api.secretName"},
		{[]string{"tls.agents.enabled=true"}, "tls.agents.enabled needs tls.agents.secretName"},
		{[]string{"tls.certManager.enabled=true", "tls.api.enabled=true"}, "tls.certManager.enabled needs tls.certManager.issuerRef.name"},
	} {
		args := []string{"template", "pxq", chartDir}
		for _, s := range c.set {
			args = append(args, "--set", s)
		}
		_, err := helmErrOut(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %v: %v, want an error saying %q", c.set, err, c.want)
		}
	}
}

func volume(p corev1.PodSpec, name string) corev1.Volume {
	for _, v := range p.Volumes {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{}
}

func mapsEqual[M ~map[string]string](a, b M) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func rulesEqual(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.Verbs, b.Verbs)
}
