# Sourced by the benchmark scripts. `install_missing CMD:PACKAGE ...` installs, from Debian, the
# package of every command that is neither on PATH nor in /usr/sbin; then stops the
# distribution's nginx/haproxy/caddy services (the harnesses run their own).
install_missing() {
    local need=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
    done
    if ((${#need[@]})); then
        export DEBIAN_FRONTEND=noninteractive
        local sudo_cmd=""
        [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        $sudo_cmd apt-get install -y -qq "${need[@]}"
    fi
    systemctl stop nginx haproxy caddy 2>/dev/null || true
}
