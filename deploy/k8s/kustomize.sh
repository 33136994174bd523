#!/usr/bin/env bash
# kustomize, pinned, built once from the Go module proxy into the cache (no cluster, no
# kubectl needed), then run with the arguments given:
#   bash deploy/k8s/kustomize.sh build deploy/k8s/overlays/plaintext
# The first run compiles it (about two minutes on two cores). XPBANK_CACHE_DIR: cache root
# (default ~/.cache/xpbank; the binary in kustomize-<version>/).
set -euo pipefail
VERSION=v5.7.1
dir="${XPBANK_CACHE_DIR:-$HOME/.cache/xpbank}/kustomize-$VERSION"
if [[ ! -x "$dir/kustomize" ]]; then
  command -v go >/dev/null || { echo "kustomize.sh: go not found (needed once, to build kustomize $VERSION)" >&2; exit 1; }
  mkdir -p "$dir"
  echo "kustomize.sh: building kustomize $VERSION (first run only)" >&2
  GOBIN="$dir.tmp" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION" >&2
  mv "$dir.tmp/kustomize" "$dir/kustomize" && rmdir "$dir.tmp"
fi
exec "$dir/kustomize" "$@"
