#!/usr/bin/env bash
# Debian packages the stack needs: Redis, Chromium (for Playwright), build
# tools and headers for librdkafka (rdkafka's cmake-build compiles it and its
# CMake picks up curl, zstd, lz4, SASL when present), openssl for test certs,
# wrk for the benchmarks, and a Korean font so the pages' screenshots show
# Hangul instead of empty boxes (the tests pass without it).
source "$(dirname "$0")/common.sh"

packages=(redis-server chromium cmake openssl curl ca-certificates python3-venv
  libcurl4-openssl-dev libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev
  wrk redis-tools fonts-nanum)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
log "apt-get install ${missing[*]}"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >"$TT_CACHE/apt.log" 2>&1 || { log_tail "$TT_CACHE/apt.log"; die "apt-get update"; }
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$TT_CACHE/apt.log" 2>&1 \
  || { log_tail "$TT_CACHE/apt.log"; die "apt-get install ${missing[*]}"; }
# The package starts a system redis on 6379; we run our own on a private port.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
  $SUDO systemctl stop redis-server || true
fi
