#!/usr/bin/env bash
# build.sh builds the Helm CLI that the chart's tests run, from the
# module pinned in go.mod beside this script (the `tool` line), into
# ${XDG_CACHE_HOME:-$HOME/.cache}/pxq/helm/VERSION/helm (or $1/helm), only
# when absent. It prints the binary's path. Tests find it there, or
# through $PXQ_HELM.
set -euo pipefail
cd "$(dirname "$0")"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
version=$(go list -m -f '{{.Version}}' helm.sh/helm/v4)
out="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/pxq/helm/$version}"
mkdir -p "$out"
if [[ ! -x "$out/helm" ]]; then
	echo "building helm $version into $out (about 3 min on 2 cores)" >&2
	go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
		-o "$out/helm.tmp" helm.sh/helm/v4/cmd/helm
	mv "$out/helm.tmp" "$out/helm"
fi
echo "$out/helm"
