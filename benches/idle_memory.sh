#!/usr/bin/env bash
# Memory per idle client connection (keep-alive, partial head, TLS, HTTP/2) and RSS at 10 000
# idle connections: switchyard beside nginx, in one run (about 2 minutes).
#
#   benches/idle_memory.sh                       # 3 000 connections per kind
#   benches/idle_memory.sh --connections 5000
#
# Installs what is missing (Debian: nginx), builds switchyard in release mode, runs
# benches/idle_memory.py and writes benches/results/idle-memory.md and idle-memory.json.
set -euo pipefail
cd "$(dirname "$0")/.."

. benches/deps.sh
install_missing nginx:nginx-light
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --bin switchyard
exec python3 benches/idle_memory.py "$@"
