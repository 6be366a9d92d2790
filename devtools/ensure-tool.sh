#!/usr/bin/env bash
# `ensure-tool.sh node|chromium`: find what `make` needs, or install Debian's package where apt
# is usable (we are root), or stop at once with one line saying what to install. Never a
# downloaded toolchain or browser (`playwright install` fetches one and fails on closed networks).
set -euo pipefail

NODE_MIN=20.19  # Vite 8 and ESLint 10 need ^20.19

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$@" >/dev/null
}

version_ok() {  # version_ok 20.19.2 20.19
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

node_version() { if command -v node >/dev/null 2>&1; then node --version 2>/dev/null | sed 's/^v//' || true; fi; }

ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if can_apt; then
      echo "make: installing Debian's nodejs and npm" >&2
      command -v node >/dev/null 2>&1 || apt_install nodejs
      command -v npm >/dev/null 2>&1 || apt_install npm
    fi
  fi
  local found
  found="$(node_version)"
  if [ -z "$found" ] || ! command -v npm >/dev/null 2>&1; then
    echo "make: need Node.js >= $NODE_MIN with npm: install them (e.g. Debian: apt-get install nodejs npm; or Node 20 from nodejs.org) and run make again" >&2
    exit 1
  fi
  if ! version_ok "$found" "$NODE_MIN"; then
    echo "make: need Node.js >= $NODE_MIN, found $found: install Node 20 (e.g. NodeSource's nodejs 20.x) and run make again" >&2
    exit 1
  fi
}

find_chromium() {
  for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

ensure_chromium() {
  if find_chromium >/dev/null; then return 0; fi
  if can_apt; then
    echo "make: installing Debian's chromium for the browser tests" >&2
    apt_install chromium
    find_chromium >/dev/null && return 0
  fi
  echo "make: the browser tests need Chromium: install Debian's package (apt-get install chromium) or set CHROMIUM_PATH, and run make again" >&2
  exit 1
}

case "${1:-}" in
  node) ensure_node ;;
  chromium) ensure_chromium ;;
  *) echo "usage: $0 node|chromium" >&2; exit 2 ;;
esac
