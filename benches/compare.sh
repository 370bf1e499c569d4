#!/usr/bin/env bash
# Side-by-side load comparison of switchyard, nginx and HAProxy on this machine.
#
#   benches/compare.sh                     # full run (about 6 minutes on 2 cores)
#   benches/compare.sh --duration 5        # shorter runs
#   benches/compare.sh --no-failure        # skip the upstream-kill run
#
# Installs what is missing (Debian: nginx, haproxy, wrk; PyPI: matplotlib for the chart),
# builds switchyard in release mode, runs benches/compare.py and writes benches/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install --quiet matplotlib || echo "no matplotlib: the chart is skipped"
# The distribution's nginx/haproxy services are not needed; the harness runs its own.
systemctl stop nginx haproxy 2>/dev/null || true

ulimit -n 65536 2>/dev/null || true
cargo build --release --bin switchyard
exec python3 benches/compare.py "$@"
