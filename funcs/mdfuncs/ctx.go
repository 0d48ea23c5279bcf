package mdfuncs

import "sort"

// ctxKeys declares df.ctx[key], once for the compiler and the docs: each
// entry's keys are aliases of one value, computed by fromUPID from a row's
// upid column or by fromPodID from its pod_id column. An empty function
// means the column cannot give the value (ctx['cmdline'] of a pod), except
// self: the pod_id column is ctx['pod_id'] itself.
var ctxKeys = []struct {
	keys      []string
	fromUPID  string
	fromPodID string
	self      bool // fromPodID is the pod_id column itself
}{
	{keys: []string{"pod", "pod_name"}, fromUPID: "upid_to_pod_name", fromPodID: "pod_id_to_pod_name"},
	{keys: []string{"pod_id"}, fromUPID: "upid_to_pod_id", self: true},
	{keys: []string{"namespace"}, fromUPID: "upid_to_namespace", fromPodID: "pod_id_to_namespace"},
	{keys: []string{"service", "service_name"}, fromUPID: "upid_to_service_name", fromPodID: "pod_id_to_service_name"},
	{keys: []string{"service_id"}, fromUPID: "upid_to_service_id", fromPodID: "pod_id_to_service_id"},
	{keys: []string{"node", "node_name"}, fromUPID: "upid_to_node_name", fromPodID: "pod_id_to_node_name"},
	{keys: []string{"hostname"}, fromUPID: "upid_to_hostname"},
	{keys: []string{"container", "container_name"}, fromUPID: "upid_to_container_name"},
	{keys: []string{"container_id"}, fromUPID: "upid_to_container_id"},
	{keys: []string{"cmdline", "cmd"}, fromUPID: "upid_to_cmdline"},
	{keys: []string{"pid"}, fromUPID: "upid_to_pid"},
	{keys: []string{"asid"}, fromUPID: "upid_to_asid"},
	{keys: []string{"deployment", "deployment_name"}, fromUPID: "upid_to_deployment_name", fromPodID: "pod_id_to_deployment_name"},
	{keys: []string{"deployment_id"}, fromUPID: "upid_to_deployment_id", fromPodID: "pod_id_to_deployment_id"},
	{keys: []string{"replicaset", "replicaset_name", "replica_set"}, fromUPID: "upid_to_replicaset_name", fromPodID: "pod_id_to_replicaset_name"},
	{keys: []string{"replicaset_id"}, fromUPID: "upid_to_replicaset_id", fromPodID: "pod_id_to_replicaset_id"},
}

// CtxColumns are the id columns df.ctx[key] reads, in the order the
// compiler tries them.
var CtxColumns = []string{"upid", "pod_id"}

// CtxKey tells which one-argument function computes df.ctx[key] from a
// row's id column col ("upid" or "pod_id"): the compiler rewrites
// df.ctx[key] into fn(df[col]). ok is false when the key is unknown or
// cannot be had from that column (ctx['cmdline'] of a pod). When ok is
// true and fn is "", the value is the column itself (ctx['pod_id'] of a
// table keyed by pod_id).
func CtxKey(key, col string) (fn string, ok bool) {
	for _, e := range ctxKeys {
		for _, k := range e.keys {
			if k != key {
				continue
			}
			switch col {
			case "upid":
				return e.fromUPID, e.fromUPID != ""
			case "pod_id":
				return e.fromPodID, e.fromPodID != "" || e.self
			}
			return "", false
		}
	}
	return "", false
}

// CtxKeys lists, sorted, the ctx keys that a column col supports; with
// col "" every key.
func CtxKeys(col string) []string {
	var out []string
	for _, e := range ctxKeys {
		for _, k := range e.keys {
			if _, ok := CtxKey(k, col); ok || col == "" {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
