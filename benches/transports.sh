#!/usr/bin/env bash
# Upstream transports (issue 24), in one run: a Unix-socket pool against the same app on TCP
# (requests per proxy CPU-second, switchyard and nginx), and gRPC unary calls per CPU-second
# through switchyard (h2c pool) beside nginx's grpc_pass.
#
#   benches/transports.sh                   # about 4 minutes on 2 cores
#   benches/transports.sh --duration 3 --rounds 1
#
# Installs what is missing (Debian: nginx, wrk, h2load), builds switchyard and the gRPC echo
# server (examples/grpc_echo.rs) in release mode, runs benches/transports.py and writes
# benches/results/transports.md and transports.json.
set -euo pipefail
cd "$(dirname "$0")/.."

. benches/deps.sh
install_missing nginx:nginx-light wrk:wrk h2load:nghttp2-client

ulimit -n 65536 2>/dev/null || true
cargo build --release --bin switchyard --example grpc_echo
exec python3 benches/transports.py "$@"
