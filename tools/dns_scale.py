#!/usr/bin/env python3
"""Scale a pool from 3 to 30 servers and back through DNS while wrk drives traffic, and count
failed requests (SPEC §7). Everything on 127.0.0.0/8, bounded in time.

    python3 tools/dns_scale.py [--switchyard target/release/switchyard] [--phase 6]

A small DNS server (here, on UDP) answers `app.test` with the first N of 127.0.0.2..127.0.0.31;
one nginx listens on all thirty addresses (same port) and answers 200; switchyard follows
`app.test` with `resolve: 1s`. N goes 3 -> 10 -> 30 -> 10 -> 3 -> 30 -> 3, one phase each,
under wrk (50 connections). Prints the pool size switchyard reported along the way and wrk's
totals; exits 1 if any request failed. Needs nginx and wrk (Debian: nginx-light, wrk).
"""
import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from loopback import free_port, wait_port  # noqa: E402

WRK_LUA = r"""
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT {\"requests\":%d,\"errors\":%d,\"non2xx\":%d,\"p99_us\":%d}\n",
    summary.requests, errors, summary.errors.status, latency:percentile(99)))
end
"""

ADDRS = [f"127.0.0.{i}" for i in range(2, 32)]


class Dns:
    """Answers A questions for `name` with the current address list; AAAA: none (NOERROR);
    other names: NXDOMAIN."""

    def __init__(self, name):
        self.name = name.lower().rstrip(".")
        self.addrs = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(1500)
            except OSError:
                continue
            try:
                self.sock.sendto(self.answer(data), peer)
            except Exception:  # a malformed question: no answer
                pass

    def answer(self, q):
        (qid, flags, qd, _, _, _) = struct.unpack(">HHHHHH", q[:12])
        i, labels = 12, []
        while q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode().lower())
            i += n + 1
        qtype, _ = struct.unpack(">HH", q[i + 1:i + 5])
        question = q[12:i + 5]
        known = ".".join(labels) == self.name
        answers = []
        if known and qtype == 1:
            for a in list(self.addrs):
                answers.append(struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(a))
        rcode = 0 if known else 3
        flags = 0x8400 | (flags & 0x0100) | 0x0080 | rcode  # response, AA, RD copied, RA
        header = struct.pack(">HHHHHH", qid, flags, 1, len(answers), 0, 0)
        return header + question + b"".join(answers)


NGINX = """
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
    server {{
{listens}
        location / {{ return 200 "hello\\n"; }}
    }}
}}
"""

CONFIG = """
listen: ["127.0.0.1:{port}"]
admin: {{listen: "127.0.0.1:{admin}"}}
threads: 1
access_log: off
watch: false
dns: {{servers: ["127.0.0.1:{dns}"]}}
upstreams:
  app:
    servers:
      - {{addr: "app.test:{up}", resolve: 1s}}
    retry: {{tries: 3}}
"""


def pool_size(admin):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/status", timeout=2) as r:
        return len(json.load(r)["upstreams"]["app"]["servers"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard", default=os.path.join(HERE, "..", "target/release/switchyard"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--phase", type=float, default=6.0, help="seconds per pool size")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="switchyard-dns-scale-")
    up = free_port()
    listens = "\n".join(f"        listen {a}:{up};" for a in ADDRS)
    with open(os.path.join(tmp, "nginx.conf"), "w") as f:
        f.write(NGINX.format(dir=tmp, listens=listens))
    nginx = subprocess.Popen([args.nginx, "-c", os.path.join(tmp, "nginx.conf"), "-p", tmp],
                             stderr=subprocess.DEVNULL)
    dns = Dns("app.test")
    dns.addrs = ADDRS[:3]
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, "switchyard.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, admin=admin, dns=dns.port, up=up))
    sy = subprocess.Popen([args.switchyard, "-c", conf], stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(tmp, "switchyard.log"), "w"),
                          env=dict(os.environ, RUST_LOG="info"))
    lua = os.path.join(tmp, "report.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    try:
        if not wait_port(port):
            sys.exit("switchyard did not start")
        for _ in range(100):
            try:
                socket.create_connection((ADDRS[0], up), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("nginx did not start")
        plan = [3, 10, 30, 10, 3, 30, 3]
        duration = int(args.phase * len(plan)) + 1
        wrk = subprocess.Popen(["wrk", "-t", "2", "-c", "50", "-d", f"{duration}s", "--timeout", "5s",
                                "-s", lua, f"http://127.0.0.1:{port}/"],
                               stdout=subprocess.PIPE, text=True)
        seen = []
        for n in plan:
            dns.addrs = ADDRS[:n]
            end = time.time() + args.phase
            sizes = []
            while time.time() < end:
                sizes.append(pool_size(admin))
                time.sleep(0.5)
            seen.append((n, sizes))
            print(f"DNS answers {n:2} addresses: switchyard's pool {sizes}", flush=True)
        out, _ = wrk.communicate(timeout=duration + 30)
        result = next(json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT "))
        followed = all(sizes[-1] == n for n, sizes in seen)
        print(f"wrk: {result['requests']} requests, {result['errors']} failed "
              f"({result['non2xx']} non-2xx), p99 {result['p99_us'] / 1000:.1f} ms; "
              f"pool followed every change: {followed}")
        sys.exit(0 if result["errors"] == 0 and followed else 1)
    finally:
        dns.stop = True
        for p in (sy, nginx):
            p.send_signal(signal.SIGTERM if p is sy else signal.SIGQUIT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
