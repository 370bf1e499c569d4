#!/usr/bin/env python3
"""Static files beside nginx, in one run (issue 23): a 1 KiB and a 1 MiB file served from
disk over keep-alive connections, by switchyard (its defaults: files kept open 1 s) and by
nginx with `sendfile on` (Debian's default), `sendfile off`, and `open_file_cache` (the
equivalent of switchyard's default), at one worker. Recorded per run: requests/s, throughput, the
server's CPU seconds (from /proc) and requests per CPU-second. Each server is measured
`--rounds` times, interleaved, and the median kept.

Started by benches/files.sh (which installs nginx and wrk when missing). Writes
benches/results/files.md and files.json. Everything listens on 127.0.0.1 and stops by itself.
"""
import argparse
import datetime
import json
import os
import platform
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from compare import WRK_LUA, cpu_seconds, peak_rss_mib, tree_pids  # noqa: E402
from loopback import free_port, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")

NGINX_CONF = """
user {user};
worker_processes 1;
daemon off;
error_log {dir}/error.log crit;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile {sendfile};
    tcp_nopush on;
    {cache}
    keepalive_requests 1000000;
    client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
    uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {root}; }}
    }}
}}
"""

SWITCHYARD_CONF = """listen: ["127.0.0.1:{port}"]
admin: {{listen: "127.0.0.1:{admin}"}}
threads: 1
access_log: off
watch: false
routes:
  - path: /
    static: {{root: "{root}"}}
"""


class Server:
    def __init__(self, kind, binary, tmp, root):
        self.kind = kind
        self.port = free_port()
        d = os.path.join(tmp, f"{kind}-{self.port}")
        os.makedirs(d)
        if kind.startswith("nginx"):
            conf = os.path.join(d, "nginx.conf")
            sendfile = "off" if kind.endswith("nosendfile") else "on"
            # switchyard keeps files open 1 s by default; nginx only when told to.
            cache = ("open_file_cache max=1000 inactive=20s; open_file_cache_valid 1s;"
                     if kind.endswith("cache") else "")
            with open(conf, "w") as f:
                user = pwd.getpwuid(os.getuid()).pw_name  # the workers must read the files
                f.write(NGINX_CONF.format(user=user, dir=d, port=self.port, root=root, sendfile=sendfile,
                                          cache=cache))
            cmd = [binary, "-c", conf, "-p", d]
        else:
            conf = os.path.join(d, "switchyard.yaml")
            with open(conf, "w") as f:
                f.write(SWITCHYARD_CONF.format(port=self.port, admin=free_port(), root=root))
            cmd = [binary, "-c", conf]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "w"),
                                     env=dict(os.environ, RUST_LOG="warn"))
        if not wait_port(self.port):
            sys.exit(f"{kind} did not start:\n" + open(os.path.join(d, "stderr.log")).read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk(port, path, connections, duration, lua):
    out = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "5s",
         "-s", lua, f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    sys.exit(f"wrk failed: {out.stdout}\n{out.stderr}")


def measure(server, path, size, connections, duration, lua):
    wrk(server.port, path, connections, 1, lua)  # warm up
    pids = tree_pids(server.proc.pid)
    cpu0 = cpu_seconds(pids)
    r = wrk(server.port, path, connections, duration, lua)
    cpu = cpu_seconds(pids) - cpu0
    secs = r["duration_us"] / 1e6
    return {
        "rps": r["requests"] / secs,
        "mib_s": r["requests"] * size / secs / 2**20,
        "cpu_s": cpu,
        "req_per_cpu_s": r["requests"] / cpu if cpu > 0 else 0,
        "errors": r["errors"] + r["non2xx"],
        "rss_mib": peak_rss_mib(pids),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--switchyard", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchyard"))
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = tempfile.mkdtemp(prefix="files-bench-")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    files = {"1 KiB": ("/1k.bin", 1024), "1 MiB": ("/1m.bin", 1 << 20)}
    for path, size in files.values():
        with open(os.path.join(root, path[1:]), "wb") as f:
            f.write(os.urandom(size))
    lua = os.path.join(tmp, "report.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    kinds = [("switchyard", args.switchyard), ("nginx", nginx), ("nginx-nosendfile", nginx),
             ("nginx-open_file_cache", nginx)]
    runs = {}
    try:
        for label, (path, size) in files.items():
            for _ in range(args.rounds):
                for kind, binary in kinds:
                    s = Server(kind, binary, tmp, root)
                    try:
                        runs.setdefault((label, kind), []).append(
                            measure(s, path, size, args.connections, args.duration, lua))
                    finally:
                        s.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for (label, kind), rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        rows.append({"file": label, "server": kind, **med, "rounds": len(rs)})
    os.makedirs(RESULTS, exist_ok=True)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.release()}",
        "nginx": subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip(),
        "duration_s": args.duration, "connections": args.connections, "rounds": args.rounds,
    }
    with open(os.path.join(RESULTS, "files.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    by = {(r["file"], r["server"]): r for r in rows}
    lines = [
        "# Static files beside nginx",
        "",
        f"`benches/files.sh`, {meta['date']}, {meta['machine']}, {meta['nginx']}. One worker each;",
        f"wrk, 1 thread, {args.connections} keep-alive connections, {args.duration} s per run, the median of "
        f"{args.rounds} interleaved runs. The ratios compare runs of the same session.",
        "",
        "| file | server | requests/s | MiB/s | CPU s | requests per CPU-second | errors | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['file']} | {r['server']} | {r['rps']:.0f} | {r['mib_s']:.0f} | {r['cpu_s']:.2f} "
                     f"| {r['req_per_cpu_s']:.0f} | {r['errors']:.0f} | {r['rss_mib']:.1f} |")
    lines += ["", "switchyard over each nginx setup (requests per CPU-second / throughput):", "",
              "| file | nginx (sendfile on, Debian's default) | nginx, sendfile off | "
              "nginx with open_file_cache (valid 1s) |",
              "|---|---:|---:|---:|"]
    for label in files:
        s = by[(label, "switchyard")]
        cells = []
        for kind in ("nginx", "nginx-nosendfile", "nginx-open_file_cache"):
            n = by[(label, kind)]
            cells.append(f"{s['req_per_cpu_s'] / n['req_per_cpu_s']:.2f} / {s['mib_s'] / n['mib_s']:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    with open(os.path.join(RESULTS, "files.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
