package mdfuncs

import "sort"

// ctxByUPID and ctxByPodID map df.ctx[key] to the function that computes
// it from a row's upid or pod_id column.
var (
	ctxByUPID = map[string]string{
		"pod":             "upid_to_pod_name",
		"pod_name":        "upid_to_pod_name",
		"pod_id":          "upid_to_pod_id",
		"namespace":       "upid_to_namespace",
		"service":         "upid_to_service_name",
		"service_name":    "upid_to_service_name",
		"service_id":      "upid_to_service_id",
		"node":            "upid_to_node_name",
		"node_name":       "upid_to_node_name",
		"container":       "upid_to_container_name",
		"container_name":  "upid_to_container_name",
		"container_id":    "upid_to_container_id",
		"cmdline":         "upid_to_cmdline",
		"pid":             "upid_to_pid", // registered by funcs core
		"deployment":      "upid_to_deployment_name",
		"deployment_name": "upid_to_deployment_name",
		"deployment_id":   "upid_to_deployment_id",
		"replicaset":      "upid_to_replicaset_name",
		"replicaset_name": "upid_to_replicaset_name",
		"replicaset_id":   "upid_to_replicaset_id",
		"hostname":        "upid_to_hostname",
	}
	ctxByPodID = map[string]string{
		"pod":             "pod_id_to_pod_name",
		"pod_name":        "pod_id_to_pod_name",
		"pod_id":          "", // the column itself
		"namespace":       "pod_id_to_namespace",
		"service":         "pod_id_to_service_name",
		"service_name":    "pod_id_to_service_name",
		"service_id":      "pod_id_to_service_id",
		"node":            "pod_id_to_node_name",
		"node_name":       "pod_id_to_node_name",
		"deployment":      "pod_id_to_deployment_name",
		"deployment_name": "pod_id_to_deployment_name",
		"deployment_id":   "pod_id_to_deployment_id",
		"replicaset":      "pod_id_to_replicaset_name",
		"replicaset_name": "pod_id_to_replicaset_name",
		"replicaset_id":   "pod_id_to_replicaset_id",
	}
)

// CtxKey tells which one-argument function computes df.ctx[key] from a
// row's id column col ("upid" or "pod_id"): the compiler rewrites
// df.ctx[key] into fn(df[col]). ok is false when the key is unknown or
// cannot be had from that column (ctx['cmdline'] of a pod). When
// ok is true and fn is "", the value is the column itself (ctx['pod_id']
// of a table keyed by pod_id).
func CtxKey(key, col string) (fn string, ok bool) {
	switch col {
	case "upid":
		fn, ok = ctxByUPID[key]
	case "pod_id":
		fn, ok = ctxByPodID[key]
	}
	return fn, ok
}

// CtxKeys lists, sorted, the ctx keys that a column col supports.
func CtxKeys(col string) []string {
	m := ctxByUPID
	if col == "pod_id" {
		m = ctxByPodID
	} else if col != "upid" {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
