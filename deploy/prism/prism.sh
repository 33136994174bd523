#!/usr/bin/env bash
# Stoplight Prism (npm @stoplight/prism-cli, pinned in package.json + package-lock.json),
# installed with `npm ci` into deploy/prism/node_modules: the contract servers of the
# write-back tests. In proxy mode Prism checks every request against an OpenAPI
# description (docs/openapi/) and forwards the valid ones to the upstream server; an
# invalid request is answered 422 and never forwarded.
#
#   bash deploy/prism/prism.sh ensure                       install when missing or when the lock changed; prints the binary
#   bash deploy/prism/prism.sh proxy DOC UPSTREAM PORT      run a validating proxy on 127.0.0.1:PORT (foreground)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
log() { echo "prism: $*" >&2; }
die() { echo "prism: ERROR: $*" >&2; exit 1; }

ensure_installed() {
  local stamp="$here/node_modules/.xpbank-lock"
  if [[ -x "$here/node_modules/.bin/prism" && -f "$stamp" ]] && cmp -s "$stamp" "$here/package-lock.json"; then
    return 0
  fi
  command -v npm >/dev/null || die "npm not found: install Node.js 20 (Debian: apt-get install nodejs npm)"
  log "installing @stoplight/prism-cli with npm ci into $here/node_modules ..."
  (cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  cp "$here/package-lock.json" "$stamp"
}

case "${1:-}" in
  ensure)
    exec 9>"/tmp/xpbank-prism.lock"  # serialise concurrent installs (several test sessions)
    flock 9
    ensure_installed
    echo "$here/node_modules/.bin/prism"
    ;;
  proxy)
    [[ $# -eq 4 ]] || die "usage: $0 proxy DOC UPSTREAM PORT"
    exec "$here/node_modules/.bin/prism" proxy "$2" "$3" --errors --host 127.0.0.1 --port "$4"
    ;;
  *)
    echo "usage: $0 ensure | proxy DOC UPSTREAM PORT" >&2
    exit 2
    ;;
esac
