// Package cluster_test is pxq's integration suite on a one-node
// Kubernetes cluster: a real kube-apiserver and etcd holding the shop's
// Deployments, ReplicaSets, running Pods, Services and EndpointSlices,
// whose containers are real processes in kubelet-named cgroups, each in
// a network namespace of its own with its pod IP on a bridge. pxq's
// commands trace the shop's HTTP and DNS traffic, and scripts in the
// style of Pixie's library (testdata) must answer what the programs
// themselves counted. PXQ_SUITE_DUMP=1 logs every script's output.
package cluster_test

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runRole(role); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
