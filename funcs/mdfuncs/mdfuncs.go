// Package mdfuncs registers PxL's metadata functions (upid_to_pod_name,
// ip_to_pod_id, pod_id_to_service_name, …) into the funcs registry, and
// tells the compiler which of them implements each df.ctx[key].
//
// Every function answers from the query's metadata.Provider (ctx.Meta).
// Kernels resolve each distinct input value once per batch; a constant
// input gives a constant output. What is unknown yields "" (0 for times).
// Pods, services, replica sets and deployments are named "namespace/name".
package mdfuncs

import (
	"encoding/json"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/types"
)

func init() { register() }

// Go types of the arguments the kernels read.
var (
	strArg  = stringsAt
	upidArg = upidsAt
)

type mdFunc struct {
	name   string
	doc    string
	arg    types.DataType // String or UInt128
	ret    types.DataType // String or Time64NS
	sem    types.SemanticType
	kernel funcs.Kernel
}

// names lists every function this package registers, for tests and docs.
var names []string

func add(fs ...mdFunc) {
	for _, f := range fs {
		funcs.RegisterScalar(&funcs.ScalarFunc{
			Name:       f.name,
			Doc:        f.doc,
			Volatility: funcs.PlaceBound,
			Overloads: []funcs.Overload{{
				Args:   []types.DataType{f.arg},
				Ret:    f.ret,
				RetSem: f.sem,
				Kernel: f.kernel,
			}},
		})
		names = append(names, f.name)
	}
}

// Names returns the names of the functions this package registers.
func Names() []string { return append([]string(nil), names...) }

// str declares a String → String function.
func str(name, doc string, sem types.SemanticType, f func(m metadata.Provider, s string) string) mdFunc {
	return mdFunc{name, doc, types.String, types.String, sem, unary(strArg, f)}
}

// strTime declares a String → Time function.
func strTime(name, doc string, f func(m metadata.Provider, s string) int64) mdFunc {
	return mdFunc{name, doc, types.String, types.Time64NS, types.STTimeNS, unary(strArg, f)}
}

// upid declares a UPID → String function over the process's pod (nil when
// the process or its pod is unknown).
func upid(name, doc string, sem types.SemanticType, f func(m metadata.Provider, p *metadata.Process) string) mdFunc {
	return mdFunc{name, doc, types.UInt128, types.String, sem, unary(upidArg, func(m metadata.Provider, u types.UInt128Value) string {
		return f(m, m.Process(u))
	})}
}

// upidPod declares a UPID → String function of the process's pod.
func upidPod(name, doc string, sem types.SemanticType, f func(m metadata.Provider, p *metadata.Pod) string) mdFunc {
	return upid(name, doc, sem, func(m metadata.Provider, p *metadata.Process) string {
		if p == nil || p.PodUID == "" {
			return ""
		}
		pod := m.Pod(p.PodUID)
		if pod == nil {
			return ""
		}
		return f(m, pod)
	})
}

func register() {
	// Pods by UID.
	podID := func(name, doc string, sem types.SemanticType, f func(m metadata.Provider, p *metadata.Pod) string) mdFunc {
		return str(name, doc, sem, func(m metadata.Provider, s string) string {
			if p := m.Pod(s); p != nil {
				return f(m, p)
			}
			return ""
		})
	}
	podIDTime := func(name, doc string, f func(p *metadata.Pod) int64) mdFunc {
		return strTime(name, doc, func(m metadata.Provider, s string) int64 {
			if p := m.Pod(s); p != nil {
				return f(p)
			}
			return 0
		})
	}
	add(
		podID("pod_id_to_pod_name", "pod UID → namespace/name", types.STPodName, podName),
		podID("pod_id_to_pod_labels", "pod UID → labels as a JSON object", types.STNone, podLabels),
		podID("pod_id_to_namespace", "pod UID → namespace", types.STNamespaceName, podNamespace),
		podID("pod_id_to_node_name", "pod UID → node name", types.STNodeName, podNode),
		podID("pod_id_to_replicaset_name", "pod UID → replica set namespace/name", types.STNone, podRSName),
		podID("pod_id_to_replicaset_id", "pod UID → replica set UID", types.STNone, podRSID),
		podID("pod_id_to_deployment_name", "pod UID → deployment namespace/name", types.STNone, podDeployName),
		podID("pod_id_to_deployment_id", "pod UID → deployment UID", types.STNone, podDeployID),
		podID("pod_id_to_service_name", "pod UID → service namespace/name (a JSON list when several)", types.STServiceName, podServiceName),
		podID("pod_id_to_service_id", "pod UID → service UID (a JSON list when several)", types.STNone, podServiceID),
		podID("pod_id_to_owner_references", "pod UID → owner references as JSON", types.STNone, podOwners),
		podIDTime("pod_id_to_start_time", "pod UID → start time", func(p *metadata.Pod) int64 { return p.StartNS }),
		podIDTime("pod_id_to_stop_time", "pod UID → stop time (0 while running)", func(p *metadata.Pod) int64 { return p.StopNS }),
	)

	// Pods by namespace/name.
	byPodName := func(name, doc string, sem types.SemanticType, f func(m metadata.Provider, p *metadata.Pod) string) mdFunc {
		return str(name, doc, sem, func(m metadata.Provider, s string) string {
			if p := m.PodByName(s); p != nil {
				return f(m, p)
			}
			return ""
		})
	}
	podNameTime := func(name, doc string, f func(p *metadata.Pod) int64) mdFunc {
		return strTime(name, doc, func(m metadata.Provider, s string) int64 {
			if p := m.PodByName(s); p != nil {
				return f(p)
			}
			return 0
		})
	}
	add(
		byPodName("pod_name_to_namespace", "pod namespace/name → namespace", types.STNamespaceName, podNamespace),
		byPodName("pod_name_to_replicaset_name", "pod namespace/name → replica set namespace/name", types.STNone, podRSName),
		byPodName("pod_name_to_replicaset_id", "pod namespace/name → replica set UID", types.STNone, podRSID),
		byPodName("pod_name_to_deployment_name", "pod namespace/name → deployment namespace/name", types.STNone, podDeployName),
		byPodName("pod_name_to_deployment_id", "pod namespace/name → deployment UID", types.STNone, podDeployID),
		byPodName("pod_name_to_pod_id", "pod namespace/name → UID", types.STNone, func(_ metadata.Provider, p *metadata.Pod) string { return p.UID }),
		byPodName("pod_name_to_pod_ip", "pod namespace/name → pod IP", types.STIPAddress, func(_ metadata.Provider, p *metadata.Pod) string { return p.IP }),
		byPodName("pod_name_to_service_name", "pod namespace/name → service namespace/name (a JSON list when several)", types.STServiceName, podServiceName),
		byPodName("pod_name_to_service_id", "pod namespace/name → service UID (a JSON list when several)", types.STNone, podServiceID),
		byPodName("pod_name_to_status", "pod namespace/name → status as JSON (phase, message, reason, ready)", types.STPodStatus, podStatus),
		byPodName("pod_name_to_owner_references", "pod namespace/name → owner references as JSON", types.STNone, podOwners),
		podNameTime("pod_name_to_start_time", "pod namespace/name → start time", func(p *metadata.Pod) int64 { return p.StartNS }),
		podNameTime("pod_name_to_stop_time", "pod namespace/name → stop time (0 while running)", func(p *metadata.Pod) int64 { return p.StopNS }),
	)

	// IPs.
	funcs.RegisterScalar(&funcs.ScalarFunc{
		Name:       "ip_to_pod_id",
		Volatility: funcs.PlaceBound,
		Doc:        "pod IP → UID of the pod that holds it now (or last held it); with a time, of the pod that held it then",
		Overloads: []funcs.Overload{
			{Args: []types.DataType{types.String}, Ret: types.String, RetSem: types.STNone, Kernel: unary(strArg, func(m metadata.Provider, ip string) string {
				if p := m.PodByIP(ip, 0); p != nil {
					return p.UID
				}
				return ""
			})},
			{Args: []types.DataType{types.String, types.Time64NS}, Ret: types.String, RetSem: types.STNone, Kernel: ipAtTime},
		},
	})
	names = append(names, "ip_to_pod_id")
	add(str("ip_to_service_id", "IP → UID of the service with that cluster IP, else of the service of the pod with that IP", types.STNone, func(m metadata.Provider, ip string) string {
		if s := m.ServiceByIP(ip); s != nil {
			return s.UID
		}
		if p := m.PodByIP(ip, 0); p != nil {
			return podServiceID(m, p)
		}
		return ""
	}))

	// Services.
	svcID := func(name, doc string, sem types.SemanticType, f func(s *metadata.Service) string) mdFunc {
		return str(name, doc, sem, func(m metadata.Provider, id string) string {
			if s := m.Service(id); s != nil {
				return f(s)
			}
			return ""
		})
	}
	svcName := func(name, doc string, sem types.SemanticType, f func(s *metadata.Service) string) mdFunc {
		return str(name, doc, sem, func(m metadata.Provider, n string) string {
			if s := m.ServiceByName(n); s != nil {
				return f(s)
			}
			return ""
		})
	}
	add(
		svcID("service_id_to_service_name", "service UID → namespace/name", types.STServiceName, (*metadata.Service).QualifiedName),
		svcID("service_id_to_cluster_ip", "service UID → cluster IP", types.STIPAddress, func(s *metadata.Service) string { return s.ClusterIP }),
		svcID("service_id_to_external_ips", "service UID → external IPs as a JSON list", types.STNone, func(s *metadata.Service) string { return jsonList(s.ExternalIPs) }),
		svcName("service_name_to_service_id", "service namespace/name → UID", types.STNone, func(s *metadata.Service) string { return s.UID }),
		svcName("service_name_to_namespace", "service namespace/name → namespace", types.STNamespaceName, func(s *metadata.Service) string { return s.Namespace }),
	)

	// Replica sets.
	rs := func(byName bool) func(m metadata.Provider, s string) *metadata.ReplicaSet {
		if byName {
			return func(m metadata.Provider, s string) *metadata.ReplicaSet { return m.ReplicaSetByName(s) }
		}
		return func(m metadata.Provider, s string) *metadata.ReplicaSet { return m.ReplicaSet(s) }
	}
	for _, byName := range []bool{false, true} {
		get, prefix, what := rs(byName), "replicaset_id_to_", "replica set UID"
		if byName {
			prefix, what = "replicaset_name_to_", "replica set namespace/name"
		}
		s := func(suffix, doc string, sem types.SemanticType, f func(r *metadata.ReplicaSet) string) mdFunc {
			return str(prefix+suffix, what+" → "+doc, sem, func(m metadata.Provider, k string) string {
				if r := get(m, k); r != nil {
					return f(r)
				}
				return ""
			})
		}
		t := func(suffix, doc string, f func(r *metadata.ReplicaSet) int64) mdFunc {
			return strTime(prefix+suffix, what+" → "+doc, func(m metadata.Provider, k string) int64 {
				if r := get(m, k); r != nil {
					return f(r)
				}
				return 0
			})
		}
		if byName {
			add(s("replicaset_id", "UID", types.STNone, func(r *metadata.ReplicaSet) string { return r.UID }))
		} else {
			add(s("replicaset_name", "namespace/name", types.STNone, (*metadata.ReplicaSet).QualifiedName))
		}
		add(
			s("namespace", "namespace", types.STNamespaceName, func(r *metadata.ReplicaSet) string { return r.Namespace }),
			s("owner_references", "owner references as JSON", types.STNone, func(r *metadata.ReplicaSet) string { return r.OwnerRefsJSON }),
			s("status", "status as JSON (replica counts)", types.STNone, func(r *metadata.ReplicaSet) string { return r.StatusJSON }),
			s("deployment_name", "deployment namespace/name", types.STNone, func(r *metadata.ReplicaSet) string { return r.DeploymentName }),
			s("deployment_id", "deployment UID", types.STNone, func(r *metadata.ReplicaSet) string { return r.DeploymentUID }),
			t("start_time", "start time", func(r *metadata.ReplicaSet) int64 { return r.StartNS }),
			t("stop_time", "stop time (0 while it exists)", func(r *metadata.ReplicaSet) int64 { return r.StopNS }),
		)
	}

	// Deployments.
	for _, byName := range []bool{false, true} {
		get := func(m metadata.Provider, s string) *metadata.Deployment { return m.Deployment(s) }
		prefix, what := "deployment_id_to_", "deployment UID"
		if byName {
			get = func(m metadata.Provider, s string) *metadata.Deployment { return m.DeploymentByName(s) }
			prefix, what = "deployment_name_to_", "deployment namespace/name"
		}
		s := func(suffix, doc string, sem types.SemanticType, f func(d *metadata.Deployment) string) mdFunc {
			return str(prefix+suffix, what+" → "+doc, sem, func(m metadata.Provider, k string) string {
				if d := get(m, k); d != nil {
					return f(d)
				}
				return ""
			})
		}
		t := func(suffix, doc string, f func(d *metadata.Deployment) int64) mdFunc {
			return strTime(prefix+suffix, what+" → "+doc, func(m metadata.Provider, k string) int64 {
				if d := get(m, k); d != nil {
					return f(d)
				}
				return 0
			})
		}
		if byName {
			add(s("deployment_id", "UID", types.STNone, func(d *metadata.Deployment) string { return d.UID }))
		} else {
			add(s("deployment_name", "namespace/name", types.STNone, (*metadata.Deployment).QualifiedName))
		}
		add(
			s("namespace", "namespace", types.STNamespaceName, func(d *metadata.Deployment) string { return d.Namespace }),
			s("status", "status as JSON (replica counts, conditions)", types.STNone, func(d *metadata.Deployment) string { return d.StatusJSON }),
			t("start_time", "start time", func(d *metadata.Deployment) int64 { return d.StartNS }),
			t("stop_time", "stop time (0 while it exists)", func(d *metadata.Deployment) int64 { return d.StopNS }),
		)
	}

	// Containers and namespaces.
	ctrTime := func(name, doc string, byName bool, f func(c *metadata.Container) int64) mdFunc {
		return strTime(name, doc, func(m metadata.Provider, k string) int64 {
			c := m.Container(k)
			if byName {
				c = m.ContainerByName(k)
			}
			if c == nil {
				return 0
			}
			return f(c)
		})
	}
	start := func(c *metadata.Container) int64 { return c.StartNS }
	stop := func(c *metadata.Container) int64 { return c.StopNS }
	add(
		str("container_id_to_status", "container id → status as JSON (state, message, reason)", types.STContainerStatus, func(m metadata.Provider, id string) string {
			if c := m.Container(id); c != nil {
				return c.StatusJSON
			}
			return ""
		}),
		ctrTime("container_id_to_start_time", "container id → start time", false, start),
		ctrTime("container_id_to_stop_time", "container id → stop time (0 while running)", false, stop),
		str("container_name_to_container_id", "container name → container id", types.STNone, func(m metadata.Provider, n string) string {
			if c := m.ContainerByName(n); c != nil {
				return c.ID
			}
			return ""
		}),
		ctrTime("container_name_to_start_time", "container name → start time", true, start),
		ctrTime("container_name_to_stop_time", "container name → stop time (0 while running)", true, stop),
		str("namespace_name_to_namespace_id", "namespace name → UID", types.STNone, func(m metadata.Provider, n string) string {
			if ns := m.Namespace(n); ns != nil {
				return ns.UID
			}
			return ""
		}),
	)

	// Processes.
	add(
		upid("upid_to_container_id", "UPID → container id", types.STNone, func(_ metadata.Provider, p *metadata.Process) string {
			if p == nil {
				return ""
			}
			return p.ContainerID
		}),
		upid("upid_to_container_name", "UPID → container name", types.STContainerName, func(_ metadata.Provider, p *metadata.Process) string {
			if p == nil {
				return ""
			}
			return p.ContainerName
		}),
		upid("upid_to_cmdline", "UPID → command line", types.STNone, func(_ metadata.Provider, p *metadata.Process) string {
			if p == nil {
				return ""
			}
			return p.Cmdline
		}),
		upid("upid_to_hostname", "UPID → hostname of the node the process runs on", types.STNone, func(m metadata.Provider, p *metadata.Process) string {
			if p == nil {
				return ""
			}
			if p.Hostname != "" {
				return p.Hostname
			}
			return m.Hostname()
		}),
		upid("upid_to_pod_id", "UPID → pod UID", types.STNone, func(m metadata.Provider, p *metadata.Process) string {
			if p == nil {
				return ""
			}
			return p.PodUID
		}),
		upidPod("upid_to_pod_name", "UPID → pod namespace/name", types.STPodName, podName),
		upidPod("upid_to_namespace", "UPID → namespace", types.STNamespaceName, podNamespace),
		upidPod("upid_to_node_name", "UPID → node name of the process's pod", types.STNodeName, podNode),
		upidPod("upid_to_service_name", "UPID → service namespace/name (a JSON list when several)", types.STServiceName, podServiceName),
		upidPod("upid_to_service_id", "UPID → service UID (a JSON list when several)", types.STNone, podServiceID),
		upidPod("upid_to_replicaset_name", "UPID → replica set namespace/name", types.STNone, podRSName),
		upidPod("upid_to_replicaset_id", "UPID → replica set UID", types.STNone, podRSID),
		upidPod("upid_to_deployment_name", "UPID → deployment namespace/name", types.STNone, podDeployName),
		upidPod("upid_to_deployment_id", "UPID → deployment UID", types.STNone, podDeployID),
		upidPod("upid_to_pod_qos", "UPID → pod QoS class (Guaranteed, Burstable, BestEffort)", types.STNone, func(_ metadata.Provider, p *metadata.Pod) string { return p.QOSClass }),
		upidPod("upid_to_pod_status", "UPID → pod status as JSON", types.STPodStatus, podStatus),
	)
}

func podName(_ metadata.Provider, p *metadata.Pod) string      { return p.QualifiedName() }
func podLabels(_ metadata.Provider, p *metadata.Pod) string    { return p.LabelsJSON }
func podNamespace(_ metadata.Provider, p *metadata.Pod) string { return p.Namespace }
func podNode(_ metadata.Provider, p *metadata.Pod) string      { return p.NodeName }
func podRSName(_ metadata.Provider, p *metadata.Pod) string    { return p.ReplicaSetName }
func podRSID(_ metadata.Provider, p *metadata.Pod) string      { return p.ReplicaSetUID }
func podDeployName(_ metadata.Provider, p *metadata.Pod) string {
	return p.DeploymentName
}
func podDeployID(_ metadata.Provider, p *metadata.Pod) string { return p.DeploymentUID }
func podOwners(_ metadata.Provider, p *metadata.Pod) string   { return p.OwnerRefsJSON }
func podStatus(_ metadata.Provider, p *metadata.Pod) string   { return p.StatusJSON }

// podServiceName is the pod's service, or a JSON list of its services
// when it has several, as Pixie shows them.
func podServiceName(_ metadata.Provider, p *metadata.Pod) string { return oneOrList(p.ServiceNames) }
func podServiceID(_ metadata.Provider, p *metadata.Pod) string   { return oneOrList(p.ServiceUIDs) }

func oneOrList(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return jsonList(s)
}

func jsonList(s []string) string {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s)
	return string(b)
}
