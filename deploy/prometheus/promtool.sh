#!/usr/bin/env bash
# promtool from Debian's `prometheus` package, unpacked (never installed: no daemon, no
# service user) into the cache on first use, then run with the arguments given:
#   bash deploy/prometheus/promtool.sh check rules deploy/prometheus/rules/*.rules.yml
#   bash deploy/prometheus/promtool.sh test rules deploy/prometheus/tests/*.test.yml
# Environment: XPBANK_CACHE_DIR (default ~/.cache/xpbank; promtool in prometheus-<version>/).
set -euo pipefail
CACHE_ROOT="${XPBANK_CACHE_DIR:-$HOME/.cache/xpbank}"

candidate() { apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }

version="$(candidate)"
if [[ -z "$version" || "$version" == "(none)" ]]; then
  apt-get update -qq >/dev/null 2>&1 || true  # a fresh machine has no package lists yet
  version="$(candidate)"
fi
[[ -n "$version" && "$version" != "(none)" ]] || { echo "promtool.sh: Debian's prometheus package is not available" >&2; exit 1; }
dir="$CACHE_ROOT/prometheus-${version//[^A-Za-z0-9.+-]/_}"
if [[ ! -x "$dir/usr/bin/promtool" ]]; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -q "prometheus=$version" >/dev/null 2>&1) \
    || { rm -rf "$tmp"; echo "promtool.sh: apt-get download prometheus=$version failed" >&2; exit 1; }
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" && dpkg-deb -x "$tmp"/prometheus_*.deb "$dir.tmp"
  rm -rf "$tmp" "$dir" && mv "$dir.tmp" "$dir"
fi
exec "$dir/usr/bin/promtool" "$@"
