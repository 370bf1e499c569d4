#!/usr/bin/env python3
"""Upstream transports, in one run (issue 24).

1. Unix socket against TCP: an nginx `return 200` app listening on both a Unix socket and a
   loopback port; switchyard (one worker) proxies to one or the other over kept-alive
   connections, and so does nginx (one worker, `keepalive 64`). wrk, keep-alive clients.
   Recorded: requests/s and the proxy's requests per CPU-second (the app's CPU is not counted).
2. gRPC unary calls: h2load (h2c with prior knowledge, POSTs of a 5+12-byte gRPC message)
   through switchyard (`protocol: h2c` pool) and through nginx (`listen … http2` +
   `grpc_pass`), to the same echo server (examples/grpc_echo.rs). Recorded: calls/s and the
   proxy's calls per CPU-second.

Each case runs `--rounds` times, interleaved, and the median is kept. Started by
benches/transports.sh; writes benches/results/transports.md and transports.json. Everything
listens on 127.0.0.1 (or a Unix socket in a scratch directory) and stops by itself.
"""
import argparse
import datetime
import json
import os
import platform
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from compare import WRK_LUA, cpu_seconds, tree_pids  # noqa: E402
from loopback import free_port, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))

NGINX_HEAD = """
user {user};
worker_processes 1;
daemon off;
error_log {dir}/error.log crit;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
    uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
{body}
}}
"""

APP = """    server {{
        listen 127.0.0.1:{port};
        listen unix:{sock};
        location / {{ return 200 "ok"; }}
    }}"""

NGINX_PROXY = """    upstream app {{ server {target}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    }}"""

NGINX_GRPC = """    upstream grpc {{ server 127.0.0.1:{grpc}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} http2;
        http2_max_concurrent_streams 1000;
        location / {{ grpc_pass grpc://grpc; }}
    }}"""

SWITCHYARD = """listen: ["127.0.0.1:{port}"]
admin: {{listen: "127.0.0.1:{admin}"}}
threads: 1
access_log: off
watch: false
upstreams:
  app:
    {protocol}
    servers: [{{addr: "{target}"}}]
"""


def nginx_conf(d, body):
    user = pwd.getpwuid(os.getuid()).pw_name
    return NGINX_HEAD.format(user=user, dir=d, body=body)


class Proc:
    def __init__(self, cmd, port, d):
        self.port = port
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "w"),
                                     env=dict(os.environ, RUST_LOG="warn"))
        if not wait_port(port):
            sys.exit(f"{cmd[0]} did not start:\n" + open(os.path.join(d, "stderr.log")).read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_nginx(tmp, nginx, name, body_of):
    port = free_port()
    d = os.path.join(tmp, f"{name}-{port}")
    os.makedirs(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(d, body_of(port)))
    return Proc([nginx, "-c", conf, "-p", d], port, d)


def start_switchyard(tmp, binary, protocol, target):
    port = free_port()
    d = os.path.join(tmp, f"switchyard-{port}")
    os.makedirs(d)
    conf = os.path.join(d, "switchyard.yaml")
    with open(conf, "w") as f:
        f.write(SWITCHYARD.format(port=port, admin=free_port(), protocol=protocol, target=target))
    return Proc([binary, "-c", conf], port, d)


def wrk(port, connections, duration, lua):
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s",
                          "--timeout", "5s", "-s", lua, f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT "):])
            return r["requests"], r["duration_us"] / 1e6, r["errors"] + r["non2xx"]
    sys.exit(f"wrk failed: {out.stdout}\n{out.stderr}")


def h2load(port, connections, streams, duration, data):
    out = subprocess.run(["h2load", "-c", str(connections), "-m", str(streams), "-D", str(duration),
                          "-d", data, "-H", "content-type: application/grpc", "-H", "te: trailers",
                          f"http://127.0.0.1:{port}/bench.Echo/Unary"],
                         capture_output=True, text=True)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                     out.stdout)
    took = re.search(r"finished in ([\d.]+)s", out.stdout)
    if not done or not took:
        sys.exit(f"h2load failed: {out.stdout}\n{out.stderr}")
    return int(done.group(2)), float(took.group(1)), int(done.group(3))


def measure(proxy, run):
    run(1)  # warm up
    pids = tree_pids(proxy.proc.pid)
    cpu0 = cpu_seconds(pids)
    n, secs, errors = run(None)
    cpu = cpu_seconds(pids) - cpu0
    return {"per_s": n / secs, "cpu_s": cpu, "per_cpu_s": n / cpu if cpu > 0 else 0,
            "errors": errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--switchyard", default=os.path.join(TARGET, "release", "switchyard"))
    ap.add_argument("--echo", default=os.path.join(TARGET, "release", "examples", "grpc_echo"))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = tempfile.mkdtemp(prefix="transports-bench-")
    lua = os.path.join(tmp, "report.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    data = os.path.join(tmp, "call.bin")
    with open(data, "wb") as f:
        msg = b"hello, world"
        f.write(b"\0" + len(msg).to_bytes(4, "big") + msg)
    sock = os.path.join(tmp, "app.sock")
    runs = {}
    app = start_nginx(tmp, nginx, "app", lambda port: APP.format(port=port, sock=sock))
    grpc_port = free_port()
    echo = Proc([args.echo, str(grpc_port)], grpc_port, tmp)
    try:
        targets = {"tcp": f"127.0.0.1:{app.port}", "unix": f"unix:{sock}"}
        for _ in range(args.rounds):
            for transport, target in targets.items():
                for proxy in ("switchyard", "nginx"):
                    if proxy == "switchyard":
                        p = start_switchyard(tmp, args.switchyard, "", target)
                    else:
                        p = start_nginx(tmp, nginx, "proxy",
                                        lambda port: NGINX_PROXY.format(port=port, target=target))
                    try:
                        runs.setdefault(("http", proxy, transport), []).append(measure(
                            p, lambda d: wrk(p.port, args.connections, d or args.duration, lua)))
                    finally:
                        p.stop()
            for proxy in ("switchyard", "nginx"):
                if proxy == "switchyard":
                    p = start_switchyard(tmp, args.switchyard, "protocol: h2c",
                                         f"127.0.0.1:{grpc_port}")
                else:
                    p = start_nginx(tmp, nginx, "grpc",
                                    lambda port: NGINX_GRPC.format(port=port, grpc=grpc_port))
                try:
                    runs.setdefault(("grpc", proxy, "h2c"), []).append(measure(
                        p, lambda d: h2load(p.port, 10, 10, d or args.duration, data)))
                finally:
                    p.stop()
    finally:
        echo.stop()
        app.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for (kind, proxy, transport), rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        rows.append({"load": kind, "proxy": proxy, "transport": transport, **med, "rounds": len(rs)})
    by = {(r["load"], r["proxy"], r["transport"]): r for r in rows}
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.release()}",
        "nginx": subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip(),
        "duration_s": args.duration, "connections": args.connections, "rounds": args.rounds,
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "transports.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [
        "# Upstream transports: Unix sockets and gRPC",
        "",
        f"`benches/transports.sh`, {meta['date']}, {meta['machine']}, {meta['nginx']}. Each proxy has",
        f"one worker; {args.duration} s per run, the median of {args.rounds} interleaved runs. CPU is the",
        "proxy's own (the app's and the load generator's are not counted).",
        "",
        f"HTTP/1.1: wrk, 1 thread, {args.connections} keep-alive connections, to an nginx `return 200` app on",
        "a loopback port or a Unix socket, through kept-alive upstream connections.",
        "gRPC: h2load, 10 h2c connections x 10 concurrent streams, unary calls of a 12-byte message to",
        "examples/grpc_echo.rs (`protocol: h2c` pool; nginx `grpc_pass` with `keepalive 64`).",
        "",
        "| load | proxy | upstream | per second | proxy CPU s | per proxy CPU-second | errors |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['load']} | {r['proxy']} | {r['transport']} | {r['per_s']:.0f} | {r['cpu_s']:.2f} "
                     f"| {r['per_cpu_s']:.0f} | {r['errors']:.0f} |")
    ratio = lambda a, b: a / b if b else 0  # noqa: E731
    lines += ["", "Ratios (requests per proxy CPU-second):", ""]
    for proxy in ("switchyard", "nginx"):
        u, t = by[("http", proxy, "unix")], by[("http", proxy, "tcp")]
        lines.append(f"- {proxy}, Unix socket over TCP: {ratio(u['per_cpu_s'], t['per_cpu_s']):.2f}")
    for transport in ("tcp", "unix"):
        s, n = by[("http", "switchyard", transport)], by[("http", "nginx", transport)]
        lines.append(f"- switchyard over nginx, to {transport}: {ratio(s['per_cpu_s'], n['per_cpu_s']):.2f}")
    s, n = by[("grpc", "switchyard", "h2c")], by[("grpc", "nginx", "h2c")]
    lines.append(f"- gRPC unary calls, switchyard over nginx: {ratio(s['per_cpu_s'], n['per_cpu_s']):.2f} "
                 f"per CPU-second, {ratio(s['per_s'], n['per_s']):.2f} per second")
    with open(os.path.join(RESULTS, "transports.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
