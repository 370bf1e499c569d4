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

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
systemctl stop nginx haproxy 2>/dev/null || true
ulimit -n 65536 2>/dev/null || true
cargo build --release --bin switchyard
exec python3 benches/tls.py "$@"
