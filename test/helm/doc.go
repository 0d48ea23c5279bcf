// Package helmtest tests pxq's Helm chart (deploy/helm/pxq) with the
// real Helm CLI, built from the module pinned in go.mod by build.sh:
// helm lint and helm template with the default values and others, the
// rendered flags checked against pxq's own command line, and an install
// into the real kube-apiserver of pxq's Kubernetes tests (RBAC on),
// where every object of the release is read back and the agents'
// service account runs pxq's metadata informers. It is a module of its
// own so that Helm's dependencies stay out of pxq's.
package helmtest
