#!/usr/bin/env bash
# `make bench`: the gateway benchmark's load generator is wrk (Debian package `wrk`).
# Installs it when missing and apt-get is there as root; else bench/gateway.py falls back
# to its aiohttp client (which takes more of the shared CPU).
command -v wrk >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "wrk not found; installing it with apt-get (Debian package wrk)..."
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null && exit 0
fi
echo "wrk not installed: the gateway benchmark uses its aiohttp load generator"
