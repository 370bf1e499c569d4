#!/usr/bin/env bash
# Static files beside nginx (issue 23): a 1 KiB and a 1 MiB file, keep-alive, one worker each.
#
#   benches/files.sh                   # about 3 minutes on 2 cores
#   benches/files.sh --duration 3 --rounds 1
#
# Installs what is missing (Debian: nginx, wrk), builds switchyard in release mode, runs
# benches/files.py and writes benches/results/files.md and files.json.
set -euo pipefail
cd "$(dirname "$0")/.."

. benches/deps.sh
install_missing nginx:nginx-light wrk:wrk

ulimit -n 65536 2>/dev/null || true
cargo build --release --bin switchyard
exec python3 benches/files.py "$@"
