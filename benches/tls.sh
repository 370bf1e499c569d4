#!/usr/bin/env bash
# TLS handshakes, HTTPS keep-alive and HTTP/2 per CPU-second: switchyard beside nginx and
# HAProxy, in one run (about 2 minutes).
#
#   benches/tls.sh                 # 10 s per load
#   benches/tls.sh --duration 5
#
# Installs what is missing (Debian: nginx, haproxy, wrk, nghttp2-client for h2load), builds
# switchyard in release mode, runs benches/tls.py and writes benches/results/tls.md.
set -euo pipefail
cd "$(dirname "$0")/.."

. benches/deps.sh
install_missing nginx:nginx-light haproxy:haproxy wrk:wrk h2load:nghttp2-client
ulimit -n 65536 2>/dev/null || true
cargo build --release --bin switchyard
exec python3 benches/tls.py "$@"
