#!/usr/bin/env python3
"""The fault run: what operators and attackers do, done to switchyard and to nginx alike.

    python3 tools/faults.py [--switchyard BIN] [--nginx BIN] [--out DIR]

Everything on 127.0.0.1, every phase bounded in time (about 3 minutes in all). Needs nginx and
wrk (Debian: nginx-light, wrk). Writes DIR/faults.md (default benches/results/). Scenarios:

- reload storm: wrk, 50 connections, 10 s, while the config is swapped between two server
  sets 30 times (switchyard: POST /reload; nginx: `nginx -s reload`): failed requests.
- backend kill: wrk, 50 connections, 10 s; one of three upstreams killed at 2 s, back at 6 s.
- total outage: all three upstreams down for 3 s under a client sending a request every
  20 ms: seconds from their return to the first 200 (defaults: switchyard's breakers open
  for 30 s; nginx's `max_fails=1 fail_timeout=10s`).
- idle flood: the proxy under a 1024 open-file limit, 3 000 idle connections (half of them
  stopping mid-head), then 50 requests: how many are answered, and how fast.
- alias bomb (switchyard only; nginx has no aliases): peak RSS growth of the running proxy
  when a 570-byte "billion laughs" YAML is pushed and refused.
"""

import argparse
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "benches"))
from loopback import free_port, wait_port  # noqa: E402
import compare  # noqa: E402  (upstreams, configs and the wrk driver of the load comparison)


class Proxy:
    """switchyard or nginx in front of `ups`, optionally under an open-file limit."""

    def __init__(self, kind, binary, tmp, ups, nofile=None):
        self.kind, self.binary = kind, binary
        self.dir = tempfile.mkdtemp(dir=tmp, prefix=kind)
        self.port, self.admin = free_port(), free_port()
        self.write(ups)
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        if kind == "nginx":
            cmd = [binary, "-c", self.conf, "-p", self.dir]
        else:
            cmd = [binary, "-c", self.conf]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"),
                                     preexec_fn=limit, env=dict(os.environ, RUST_LOG="warn"))
        if not wait_port(self.port):
            sys.exit(f"{kind} did not start")

    def write(self, ups):
        if self.kind == "nginx":
            servers = "\n".join(f"        server 127.0.0.1:{u.port} max_fails=1 fail_timeout=10s;" for u in ups)
            self.conf = os.path.join(self.dir, "nginx.conf")
            text = compare.NGINX_CONF.format(workers=1, dir=self.dir, servers=servers, port=self.port)
        else:
            servers = "\n".join(f'      - addr: "127.0.0.1:{u.port}"' for u in ups)
            self.conf = os.path.join(self.dir, "switchyard.yaml")
            text = compare.SWITCHYARD_CONF.format(workers=1, port=self.port, admin=self.admin, servers=servers)
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def reload(self, ups):
        self.write(ups)
        if self.kind == "nginx":
            subprocess.run([self.binary, "-c", self.conf, "-p", self.dir, "-s", "reload"],
                           stderr=subprocess.DEVNULL, check=False)
        else:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{self.admin}/reload", method="POST"), timeout=10).read()

    def peak_rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGINT if self.kind != "nginx" else signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def get(port, timeout=1.0):
    """One GET on its own connection: the status, or 0 when nothing came."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            return int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0
    except (OSError, ValueError):
        return 0


def reload_storm(p, ups, lua):
    sets = [ups[:2], ups[1:]]

    def storm():
        for i in range(30):
            time.sleep(0.3)
            p.reload(sets[i % 2])

    t = threading.Thread(target=storm)
    t.start()
    r = compare.wrk(p.port, 50, 10, lua)
    t.join()
    p.reload(ups)
    return f"{r['errors']} failed of {r['requests']}"


def backend_kill(p, ups, lua):
    def fault():
        time.sleep(2)
        ups[1].kill()
        time.sleep(4)
        ups[1].start()

    t = threading.Thread(target=fault)
    t.start()
    r = compare.wrk(p.port, 50, 10, lua)
    t.join()
    return f"{r['errors']} failed of {r['requests']}"


def total_outage(p, ups):
    # Steady traffic first, so the proxy's state is warm.
    for _ in range(20):
        get(p.port)
    for u in ups:
        u.kill()
    down_until = time.time() + 3
    while time.time() < down_until:
        get(p.port)
        time.sleep(0.02)
    for u in ups:
        u.start()
    back = time.time()
    while time.time() - back < 40:
        if get(p.port) == 200:
            return f"{time.time() - back:.1f} s"
        time.sleep(0.02)
    return "no 200 within 40 s"


def idle_flood(kind, binary, tmp, ups):
    p = Proxy(kind, binary, tmp, ups, nofile=1024)
    conns = []
    try:
        for i in range(3000):
            try:
                s = socket.create_connection(("127.0.0.1", p.port), 2)
                if i % 2 == 0:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
                conns.append(s)
            except OSError:
                break
        times, ok = [], 0
        for _ in range(50):
            t0 = time.time()
            ok += get(p.port, timeout=5) == 200
            times.append(time.time() - t0)
        times.sort()
        return f"{ok}/50 answered; median {times[25] * 1000:.1f} ms, worst {times[-1] * 1000:.0f} ms ({len(conns)} idle)"
    finally:
        for s in conns:
            s.close()
        p.stop()


def alias_bomb(p):
    bomb = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))
    before = p.peak_rss_kib()
    shutil.copy(p.conf, p.conf + ".good")
    with open(p.conf, "w") as f:
        f.write(bomb)
    t0 = time.time()
    try:
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{p.admin}/reload", method="POST"), timeout=30).read()
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    took = time.time() - t0
    os.replace(p.conf + ".good", p.conf)
    grew = (p.peak_rss_kib() - before) / 1024
    return f"{len(bomb)} bytes: {status}, peak RSS +{grew:.1f} MiB, {took * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard", default=os.path.join(ROOT, "target/release/switchyard"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--out", default=os.path.join(ROOT, "benches", "results"))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    tmp = tempfile.mkdtemp(prefix="switchyard-faults-")
    lua = os.path.join(tmp, "report.lua")
    with open(lua, "w") as f:
        f.write(compare.WRK_LUA)
    ups = [compare.Upstream(args.nginx, tmp, i) for i in range(3)]
    rows = {}
    try:
        for kind, binary in [("switchyard", args.switchyard), ("nginx", args.nginx)]:
            row = rows.setdefault(kind, {})
            p = Proxy(kind, binary, tmp, ups)
            try:
                row["reload storm (30 reloads in 10 s)"] = reload_storm(p, ups, lua)
                print(kind, "reload storm:", row["reload storm (30 reloads in 10 s)"], flush=True)
                row["backend kill (1 of 3 for 4 s)"] = backend_kill(p, ups, lua)
                print(kind, "backend kill:", row["backend kill (1 of 3 for 4 s)"], flush=True)
                row["total outage: first 200 after the return"] = total_outage(p, ups)
                print(kind, "total outage:", row["total outage: first 200 after the return"], flush=True)
                row["alias bomb pushed and refused"] = alias_bomb(p) if kind == "switchyard" else "n/a"
                print(kind, "alias bomb:", row["alias bomb pushed and refused"], flush=True)
            finally:
                p.stop()
            row["idle flood (3 000 conns, 1024 files)"] = idle_flood(kind, binary, tmp, ups)
            print(kind, "idle flood:", row["idle flood (3 000 conns, 1024 files)"], flush=True)
    finally:
        for u in ups:
            u.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    names = list(rows["switchyard"].keys())
    md = ["# Fault run: switchyard beside nginx", "",
          time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + "; `python3 tools/faults.py`; all on loopback,"
          " default settings (nginx: `max_fails=1 fail_timeout=10s`, `proxy_next_upstream error timeout`).",
          "", "| fault | switchyard | nginx |", "|---|---|---|"]
    for n in names:
        md.append(f"| {n} | {rows['switchyard'][n]} | {rows['nginx'].get(n, '')} |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "faults.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
