#!/usr/bin/env bash
# build.sh builds kube-apiserver and etcd for pxq's Kubernetes tests into
# ${XDG_CACHE_HOME:-$HOME/.cache}/pxq/k8s-bins/ (or $1), only when absent.
# Tests find them there, or through KUBEBUILDER_ASSETS. Versions are pinned
# in go.mod beside this script: kube-apiserver v1.37.2 (k8s.io/* v0.37.2,
# the client-go pxq uses) and etcd v3.7.3, the version Kubernetes 1.37 pins.
set -euo pipefail
cd "$(dirname "$0")"
KUBE_VERSION=v1.37.2
out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/pxq/k8s-bins}"
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
if [[ ! -x "$out/etcd" ]]; then
	echo "building etcd into $out" >&2
	go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
	mv "$out/etcd.tmp" "$out/etcd"
fi
if [[ ! -x "$out/kube-apiserver" ]]; then
	echo "building kube-apiserver into $out (about 5 min on 2 cores)" >&2
	go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION" \
		-o "$out/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
	mv "$out/kube-apiserver.tmp" "$out/kube-apiserver"
fi
echo "$out"
