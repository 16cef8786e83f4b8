#!/usr/bin/env bash
# Installs the servers cratestream's tests and demo run as child processes:
# clickhouse-server and redis-server, and with --test (make test) the
# clients the tests drive: chromium for the web UI's browser test and kcat
# (librdkafka) for the external-client test; from Debian's apt, when missing
# and this user can install packages. --browser is the old name of --test. Never fails the caller unless
# CRATESTREAM_DEPS_REQUIRED=1 (make test under CI=true): the demo runs
# without ClickHouse and with an in-process Redis when they cannot be had.
set -uo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || missing+=(clickhouse-server clickhouse-client)
case "${1:-}" in
--test | --browser)
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v kcat >/dev/null 2>&1 || [ -x /usr/bin/kcat ] || missing+=(kcat)
  ;;
esac
[ ${#missing[@]} -eq 0 ] && exit 0

fail() {
  echo "install-deps: $*" >&2
  if [ "${CRATESTREAM_DEPS_REQUIRED:-0}" = 1 ]; then exit 1; fi
  echo "install-deps: continuing without them (install later with: sudo apt-get install ${missing[*]})" >&2
  exit 0
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get not available to install: ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    fail "need root (or passwordless sudo) to install: ${missing[*]}"
  fi
fi

echo "install-deps: installing ${missing[*]} from apt" >&2
# Keep the packages from starting system-wide servers: cratestream starts
# private instances. Only while installing, and only if no policy exists.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && $sudo rm -f "$policy"; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q "${missing[@]}" >/tmp/cratestream-apt.log 2>&1; then
  $sudo apt-get update -q >>/tmp/cratestream-apt.log 2>&1
  $sudo apt-get install -y -q "${missing[@]}" >>/tmp/cratestream-apt.log 2>&1 || {
    tail -20 /tmp/cratestream-apt.log >&2
    cleanup; trap - EXIT
    fail "apt-get install ${missing[*]} failed (log: /tmp/cratestream-apt.log)"
  }
fi
echo "install-deps: installed ${missing[*]}" >&2
