#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the browser tests (tests/e2e/test_ui.py), from
# Debian's packages, like deploy/redis/redis.sh installs redis-server.
#
#   bash deploy/chromium/chromium.sh ensure   install chromium and chromium-driver when missing (apt-get, as root);
#                                             prints the two paths: the browser, then the driver
#
# Environment:
#   XPBANK_CHROMIUM       the browser binary (default: chromium on PATH)
#   XPBANK_CHROMEDRIVER   the driver binary (default: chromedriver on PATH, /usr/bin/chromedriver)
set -euo pipefail

log() { echo "chromium: $*" >&2; }
die() { echo "chromium: ERROR: $*" >&2; exit 1; }

browser() { command -v "${XPBANK_CHROMIUM:-chromium}" 2>/dev/null || true; }
driver() { command -v "${XPBANK_CHROMEDRIVER:-chromedriver}" 2>/dev/null || true; }

ensure_installed() {
  [[ -n "$(browser)" && -n "$(driver)" ]] && return 0
  if [[ "$(id -u)" -ne 0 ]]; then
    die "chromium or chromedriver not found: install them (Debian: apt-get install chromium chromium-driver), or set XPBANK_CHROMIUM and XPBANK_CHROMEDRIVER"
  fi
  log "chromium or chromedriver not found; installing them with apt-get (Debian packages chromium, chromium-driver)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  [[ -n "$(browser)" && -n "$(driver)" ]] || die "apt-get install chromium chromium-driver did not provide chromium and chromedriver"
}

case "${1:-}" in
  ensure)
    exec 9>"/tmp/xpbank-chromium.lock"  # serialise concurrent installs (several test sessions)
    flock 9
    ensure_installed
    browser
    driver
    ;;
  *)
    echo "usage: $0 ensure" >&2
    exit 2
    ;;
esac
