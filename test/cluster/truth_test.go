package cluster_test

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
)

// truth is what the shop's programs counted in a round, per pod.
type truth struct {
	counts map[*pod]counts
	// edges counts the HTTP requests per (client pod, server pod).
	edges map[[2]*pod]int
	// dns counts the DNS queries per client pod: sent (and answered) as
	// the client counted, and answered as the server counted.
	dnsSent, dnsServed map[*pod]int
}

// truth reads the programs' counts, after rounds rounds of load since
// they were reset, and checks that both ends of every exchange agree (a
// setup that lost a request is not a test of pxq).
func (n *node) truth(t *testing.T, rounds int) *truth {
	t.Helper()
	tr := &truth{counts: map[*pod]counts{}, edges: map[[2]*pod]int{}, dnsSent: map[*pod]int{}, dnsServed: map[*pod]int{}}
	for _, p := range n.pods {
		tr.counts[p] = p.counts(t, false)
	}
	sent := map[string]int{} // per callee service, by the clients
	for p, c := range tr.counts {
		if c.Failed > 0 {
			t.Fatalf("%s: %d calls failed", p.name, c.Failed)
		}
		for ip, k := range c.HTTPIn {
			client := n.byIP[ip]
			if client == nil {
				t.Fatalf("%s served %d requests from %s, not a pod", p.name, k, ip)
			}
			tr.edges[[2]*pod{client, p}] += k
		}
		for svc, k := range c.HTTPOut {
			sent[svc] += k
		}
		for ip, k := range c.DNSIn {
			if client := n.byIP[ip]; client != nil {
				tr.dnsServed[client] += k
			} else {
				t.Fatalf("DNS queries from %s, not a pod", ip)
			}
		}
		if k := c.DNSOut[n.dnsIP]; k > 0 {
			tr.dnsSent[p] = k
		}
	}
	for _, p := range n.pods {
		if p.service == nil {
			continue
		}
		in := 0
		for _, k := range tr.counts[p].HTTPIn {
			in += k
		}
		if in != sent[p.service.Name] {
			t.Fatalf("%s served %d requests, its clients sent %d", p.name, in, sent[p.service.Name])
		}
	}
	if !maps.Equal(tr.dnsSent, tr.dnsServed) {
		t.Fatalf("DNS queries answered %v, received %v", tr.dnsServed, tr.dnsSent)
	}
	if want := rounds * (views + purchases); tr.served(n.byName["frontend"]) != want {
		t.Fatalf("the frontend served %d requests, want %d", tr.served(n.byName["frontend"]), want)
	}
	return tr
}

// served is the number of HTTP requests p served.
func (tr *truth) served(p *pod) int {
	s := 0
	for _, k := range tr.counts[p].HTTPIn {
		s += k
	}
	return s
}

// errors is the number of HTTP requests p answered with 400 or above.
func (tr *truth) errors(p *pod) int {
	s := 0
	for st, k := range tr.counts[p].HTTPStatus {
		if st >= http.StatusBadRequest {
			s += k
		}
	}
	return s
}

// entity is how the suite's graphs name a pod: its service, else itself.
func entity(p *pod) string {
	if s := p.Service(); s != "" {
		return s
	}
	return p.Name()
}

// runner runs a suite script (a testdata folder) with pxq arguments.
type runner func(script string, args ...string) map[string][]row

// diffAll runs every script of the suite and returns how their answers
// differ from the truth ("" for none).
func diffAll(n *node, tr *truth, run runner) []string {
	var d []string
	get := func(name string, args ...string) map[string][]row {
		return run(name, args...)
	}
	shop := func(p *pod) bool { return p.ns == "shop" }

	// service_stats: requests, errors and server-side rows per service.
	out := get("service_stats")
	want := map[string]string{}
	statuses := map[string]string{}
	for _, p := range n.pods {
		if p.service == nil || !shop(p) || tr.served(p) == 0 {
			continue
		}
		want[p.Service()] = fmt.Sprintf("requests=%d errors=%d server_rows=%d", tr.served(p), tr.errors(p), tr.served(p))
		for st, k := range tr.counts[p].HTTPStatus {
			statuses[fmt.Sprint(st)] = addCount(statuses[fmt.Sprint(st)], k)
		}
	}
	d = append(d, compare("service_stats", want, out["service_stats"], "service", "requests", "errors", "server_rows")...)
	d = append(d, compare("status_codes", statuses, out["status_codes"], "resp_status", "requests")...)

	// service_edges: requests per (requestor, responder), none reversed.
	want = map[string]string{}
	for e, k := range tr.edges {
		if shop(e[1]) {
			want[entity(e[0])+" -> "+entity(e[1])] = fmt.Sprintf("requests=%d", k)
		}
	}
	d = append(d, compareEdges("service_edges", want, get("service_edges")["service_edges"], "requestor", "responder", "requests")...)

	// pxviews_http: the pxviews module's request graph between pods
	// and the requests each pod received.
	want = map[string]string{}
	for e, k := range tr.edges {
		want[e[0].Name()+" -> "+e[1].Name()] = fmt.Sprintf("num_requests=%d", k)
	}
	out = get("pxviews_http")
	d = append(d, compareEdges("view_http_graph", want, out["view_http_graph"], "requestor_pod", "responder_pod", "num_requests")...)
	want = map[string]string{}
	for _, p := range n.pods {
		if tr.served(p) > 0 {
			want[p.Name()] = fmt.Sprintf("requests=%d errors=%d", tr.served(p), tr.errors(p))
		}
	}
	d = append(d, compare("view_inbound", want, out["view_inbound"], "pod", "requests", "errors")...)

	// namespace_overview: the namespace's pods, running, one process
	// each; its services, one pod each, with the requests they served.
	out = get("namespace_overview")
	want = map[string]string{}
	services := map[string]string{}
	for _, p := range n.pods {
		if !shop(p) {
			continue
		}
		want[p.Name()] = "phase=Running processes=1"
		if p.service != nil {
			services[p.Service()] = fmt.Sprintf("pods=1 requests=%d", tr.served(p))
		}
	}
	d = append(d, compare("namespace_pods", want, out["namespace_pods"], "pod", "phase", "processes")...)
	d = append(d, compare("namespace_services", services, out["namespace_services"], "service", "pods", "requests")...)

	// pod_overview of checkout: whom it served, whom it called.
	co := n.byName["checkout"]
	out = get("pod_overview", "--arg", "pod="+co.Name())
	in, outb := map[string]string{}, map[string]string{}
	for e, k := range tr.edges {
		if e[1] == co {
			in[e[0].Name()] = fmt.Sprintf("requests=%d", k)
		}
		if e[0] == co {
			outb[e[1].Name()] = fmt.Sprintf("requests=%d", k)
		}
	}
	d = append(d, compare("pod_inbound", in, out["pod_inbound"], "requestor", "requests")...)
	d = append(d, compare("pod_outbound", outb, out["pod_outbound"], "responder", "requests")...)

	// net_flow_graph: a flow per HTTP edge and per DNS client, from the
	// client to the server, never to 0.0.0.0, none reversed.
	want = map[string]string{}
	inbound := map[string]string{}
	outbound := map[string]string{}
	for e := range tr.edges {
		want[e[0].Name()+" -> "+e[1].Name()] = ""
		inbound[e[1].Name()+" <- "+e[0].ip] = "remote_pod=" + e[0].Name()
		outbound[fmt.Sprintf("%s -> %s:%d", e[0].Name(), e[1].ip, appPort)] = "remote_pod=" + e[1].Name()
	}
	dnsPod := n.byIP[n.dnsIP]
	dnsFlows := map[string]string{}
	for p, k := range tr.dnsSent {
		want[p.Name()+" -> "+dnsPod.Name()] = ""
		inbound[dnsPod.Name()+" <- "+p.ip] = "remote_pod=" + p.Name()
		outbound[fmt.Sprintf("%s -> %s:53", p.Name(), n.dnsIP)] = "remote_pod=" + dnsPod.Name()
		dnsFlows[fmt.Sprintf("%s -> %s 1", p.Name(), dnsPod.Name())] = fmt.Sprintf("server_addr=%s queries=%d", n.dnsIP, k)
		dnsFlows[fmt.Sprintf("%s -> %s 2", p.Name(), dnsPod.Name())] = fmt.Sprintf("queries=%d", tr.dnsServed[p])
	}
	flows := get("net_flow_graph")["net_flow_graph"]
	d = append(d, compareEdges("net_flow_graph", want, flows, "from_entity", "to_entity")...)
	for _, r := range flows {
		if r.num("bytes") <= 0 {
			d = append(d, fmt.Sprintf("net_flow_graph: flow %s -> %s has %v bytes", r.str("from_entity"), r.str("to_entity"), r["bytes"]))
		}
	}
	// inbound_conns and outbound_conns, of the node's pods.
	d = append(d, compare("inbound_conns", inbound, keyed(get("inbound_conns")["inbound_conns"], func(r row) string {
		return r.str("pod") + " <- " + r.str("remote_addr")
	}), "", "remote_pod")...)
	d = append(d, compare("outbound_conns", outbound, keyed(get("outbound_conns")["outbound_conns"], func(r row) string {
		return fmt.Sprintf("%s -> %s:%d", r.str("pod"), r.str("remote_addr"), r.num("remote_port"))
	}), "", "remote_pod")...)
	// dns_flow: each client's queries, from its side and the server's.
	d = append(d, compare("dns_flow", dnsFlows, keyed(get("dns_flow")["dns_flow"], func(r row) string {
		return fmt.Sprintf("%s -> %s %d", r.str("client"), r.str("server"), r.num("trace_role"))
	}), "", "server_addr", "queries")...)
	return d
}

// keyed gives each row the key key makes of it, in a column "".
func keyed(rows []row, key func(row) string) []row {
	out := make([]row, len(rows))
	for i, r := range rows {
		k := row{"": key(r)}
		for c, v := range r {
			k[c] = v
		}
		out[i] = k
	}
	return out
}

// compare checks that rows, by their column keyCol, are exactly want:
// for each key, "col=value …" of cols (server_addr is left out of
// trace_role 2's DNS rows, whose want has none).
func compare(table string, want map[string]string, rows []row, keyCol string, cols ...string) []string {
	got := map[string]string{}
	var d []string
	for _, r := range rows {
		k := r.str(keyCol)
		var vals []string
		w := want[k]
		for _, c := range cols {
			if w != "" && !strings.Contains(" "+w, " "+c+"=") {
				continue
			}
			v := r[c]
			if f, ok := v.(float64); ok {
				v = int64(f)
			}
			vals = append(vals, fmt.Sprintf("%s=%v", c, v))
		}
		if _, dup := got[k]; dup {
			d = append(d, fmt.Sprintf("%s: two rows for %q", table, k))
		}
		got[k] = strings.Join(vals, " ")
	}
	for _, k := range sortedKeys(want) {
		if g, ok := got[k]; !ok {
			d = append(d, fmt.Sprintf("%s: no row for %q, want %s", table, k, want[k]))
		} else if g != want[k] {
			d = append(d, fmt.Sprintf("%s: %q has %s, want %s", table, k, g, want[k]))
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s: unexpected row %q: %s", table, k, got[k]))
		}
	}
	return d
}

// compareEdges is compare for graphs: rows keyed "from -> to", and a
// reversed edge named as such.
func compareEdges(table string, want map[string]string, rows []row, from, to string, cols ...string) []string {
	d := compare(table, want, keyed(rows, func(r row) string { return r.str(from) + " -> " + r.str(to) }), "", cols...)
	for _, r := range rows {
		if rev := r.str(to) + " -> " + r.str(from); hasKey(want, rev) {
			d = append(d, fmt.Sprintf("%s: reversed edge %s -> %s", table, r.str(from), r.str(to)))
		}
	}
	return d
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// addCount adds k to the "requests=N" of s.
func addCount(s string, k int) string {
	var n int
	fmt.Sscanf(s, "requests=%d", &n)
	return fmt.Sprintf("requests=%d", n+k)
}
