#!/usr/bin/env bash
# Side-by-side load comparison of switchyard, nginx, HAProxy and Caddy on this machine.
#
#   benches/compare.sh                     # full run (about 6 minutes on 2 cores)
#   benches/compare.sh --duration 5        # shorter runs
#   benches/compare.sh --no-failure        # skip the upstream-kill run
#
# Installs what is missing (Debian: nginx, haproxy, wrk, caddy; PyPI: matplotlib for the chart),
# builds switchyard in release mode, runs benches/compare.py and writes benches/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

. benches/deps.sh
install_missing nginx:nginx-light haproxy:haproxy wrk:wrk caddy:caddy
python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install --quiet matplotlib || echo "no matplotlib: the chart is skipped"

ulimit -n 65536 2>/dev/null || true
cargo build --release --bin switchyard
exec python3 benches/compare.py "$@"
