#!/usr/bin/env python3
"""Memory per idle client connection: switchyard beside nginx, in one run.

Started by benches/idle_memory.sh. Each proxy runs one worker in front of one upstream (an
nginx answering "hello\\n") with head and keep-alive timeouts long enough that nothing is
closed while measuring. For each kind of idle client, N connections are opened one after the
other and left open; the proxy's resident memory (VmRSS summed over its processes) is read
before and after, and the growth divided by N is the cost of one connection:

- keepalive: one request, its 200 read, then idle on keep-alive;
- mid-head:  a request head sent in part (slowloris) and left unfinished;
- tls:       TLS handshake, one request, its 200 read, then idle;
- h2:        TLS with ALPN h2, the preface, SETTINGS and one GET, its answer read, then idle.

Then RSS with 10 000 idle keep-alive connections. Writes benches/results/idle-memory.md and
idle-memory.json. Everything listens on 127.0.0.1 and stops by itself.
"""
import argparse
import datetime
import json
import os
import resource
import select
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import compare  # noqa: E402
from loopback import free_port, wait_port  # noqa: E402
from tls import make_cert  # noqa: E402

RESULTS = os.path.join(HERE, "results")
KINDS = ["keepalive", "mid-head", "tls", "h2"]

NGINX_CONF = """
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
error_log {dir}/error.log crit;
pid {dir}/nginx.pid;
events {{ worker_connections 30000; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_header_timeout 300s;
    client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
    uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        http2_idle_timeout 300s;
        http2_recv_timeout 300s;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

SWITCHYARD_CONF = """
listen:
  - "127.0.0.1:{port}"
  - addr: "127.0.0.1:{tls_port}"
    tls: {{certificates: [{{cert: "{cert}", key: "{key}"}}]}}
admin: {{listen: "127.0.0.1:{admin}"}}
threads: 1
access_log: off
watch: false
limits:
  header_read_timeout: 300s
  keepalive_timeout: 300s
  max_connections: 30000
upstreams:
  app:
    servers:
      - addr: "127.0.0.1:{upstream}"
"""


class Proxy(compare.Proxy):
    """compare.Proxy's pids and stop, with a plain and a TLS listener."""

    def __init__(self, kind, binary, tmp, upstream, cert):
        self.kind = kind
        self.port, self.tls_port = free_port(), free_port()
        d = os.path.join(tmp, f"{kind}-{self.port}")
        os.makedirs(d, exist_ok=True)
        crt, key, _ = cert
        fields = dict(nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0], dir=d, port=self.port, tls_port=self.tls_port, upstream=upstream.port,
                      cert=crt, key=key, admin=free_port())
        if kind == "nginx":
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(**fields))
            cmd = [binary, "-c", conf, "-p", d]
        else:
            conf = os.path.join(d, "switchyard.yaml")
            with open(conf, "w") as f:
                f.write(SWITCHYARD_CONF.format(**fields))
            cmd = [binary, "-c", conf]
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "stderr.log"), "w"), env=env)
        if not (wait_port(self.port) and wait_port(self.tls_port)):
            sys.exit(f"{kind} did not start:\n" + open(os.path.join(d, "stderr.log")).read())

    def rss_kib(self):
        total = 0
        for p in self.pids():
            try:
                with open(f"/proc/{p}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total


REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


def read_response(sock):
    """Reads one small HTTP/1.1 response (headers and a body of Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"unexpected answer {head[:40]!r}")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed in the body")
        body += chunk


def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def h2_request():
    # HPACK (RFC 7541): :method GET, :scheme https, :path / from the static table, :authority
    # as a literal with an indexed name.
    block = b"\x82\x87\x84\x41\x09localhost"
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"")
            + h2_frame(1, 0x5, 1, block))  # HEADERS, END_STREAM | END_HEADERS


def h2_read_answer(sock):
    """Reads frames until stream 1 ends; acknowledges the server's SETTINGS."""
    buf = b""
    while True:
        while len(buf) < 9:
            chunk = sock.recv(16384)
            if not chunk:
                raise ConnectionError("h2 closed")
            buf += chunk
        length = int.from_bytes(buf[:3], "big")
        while len(buf) < 9 + length:
            chunk = sock.recv(16384)
            if not chunk:
                raise ConnectionError("h2 closed")
            buf += chunk
        kind, flags, stream = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        buf = buf[9 + length:]
        if kind == 4 and not flags & 1:
            sock.sendall(h2_frame(4, 1, 0, b""))
        if kind == 7:
            raise ConnectionError("h2 GOAWAY")
        if stream == 1 and kind in (0, 1) and flags & 1:
            return


def open_idle(kind, proxy, context):
    port = proxy.tls_port if kind in ("tls", "h2") else proxy.port
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if kind == "keepalive":
        raw.sendall(REQUEST)
        read_response(raw)
        return raw
    if kind == "mid-head":
        raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        return raw
    sock = context[kind].wrap_socket(raw, server_hostname="localhost")
    if kind == "tls":
        sock.sendall(REQUEST)
        read_response(sock)
    else:
        if sock.selected_alpn_protocol() != "h2":
            raise ConnectionError("no h2 by ALPN")
        sock.sendall(h2_request())
        h2_read_answer(sock)
    return sock


def settle(proxy):
    """RSS once it has stopped moving (the proxy finished its work on the last connections)."""
    last = proxy.rss_kib()
    for _ in range(20):
        time.sleep(0.25)
        now = proxy.rss_kib()
        if now == last:
            return now
        last = now
    return last


def measure(proxy, kind, n, context):
    # Warm-up: the first connections of a kind grow pools and caches once for all.
    for s in [open_idle(kind, proxy, context) for _ in range(50)]:
        s.close()
    time.sleep(0.5)
    before = settle(proxy)
    socks = []
    try:
        for _ in range(n):
            socks.append(open_idle(kind, proxy, context))
        after = settle(proxy)
        # Every connection still open: a proxy that closed some would look cheaper.
        time.sleep(0.2)
        alive = sum(1 for s in socks if still_open(s))
    finally:
        for s in socks:
            s.close()
    return {"kind": kind, "connections": n, "alive": alive, "rss_before_kib": before,
            "rss_after_kib": after, "kib_per_connection": round((after - before) / n, 2)}


def still_open(sock):
    """Whether the peer has not closed (nor reset) the connection."""
    p = select.poll()
    p.register(sock.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    return not p.poll(0)


def contexts():
    out = {}
    for kind, alpn in (("tls", ["http/1.1"]), ("h2", ["h2"])):
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        c.set_alpn_protocols(alpn)
        out[kind] = c
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=3000)
    ap.add_argument("--flood", type=int, default=10000)
    ap.add_argument("--switchyard", default=os.path.join(compare.ROOT, "target", "release", "switchyard"))
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 40000)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < args.flood + 100:
        sys.exit(f"open-file limit {hard} is too low for {args.flood} connections")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cert = make_cert(tmp)
        context = contexts()
        upstream = compare.Upstream(args.nginx, tmp, 0)
        try:
            for name, binary in (("nginx", args.nginx), ("switchyard", args.switchyard)):
                row = {"proxy": name}
                # A fresh process for each kind: memory a proxy freed stays resident in it and
                # would hide what the next kind costs.
                for kind in KINDS + ["flood"]:
                    proxy = Proxy(name, binary, tmp, upstream, cert)
                    try:
                        if kind == "flood":
                            base = settle(proxy)
                            r = measure(proxy, "keepalive", args.flood, context)
                            r["rss_base_mib"] = round(base / 1024, 1)
                            r["rss_mib"] = round(r["rss_after_kib"] / 1024, 1)
                            print(f"{name:10} {args.flood} idle: {r['rss_mib']} MiB "
                                  f"({r['alive']} open)", flush=True)
                        else:
                            r = measure(proxy, kind, args.connections, context)
                            print(f"{name:10} {kind:9} {r['kib_per_connection']:8.2f} KiB/conn "
                                  f"({r['alive']}/{r['connections']} open)", flush=True)
                        row[kind] = r
                    finally:
                        proxy.stop()
                rows.append(row)
        finally:
            upstream.stop()

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "idle-memory.json"), "w") as f:
        json.dump({"date": datetime.date.today().isoformat(), "connections": args.connections,
                   "rows": rows}, f, indent=1)
    by = {r["proxy"]: r for r in rows}
    lines = [
        "# Memory per idle client connection",
        "",
        f"`benches/idle_memory.sh`, {datetime.date.today().isoformat()}, one worker each, "
        f"{args.connections} connections of each kind opened one after the other and held open; "
        "RSS growth of the proxy divided by their number.",
        "",
        "| kind | nginx KiB/conn | switchyard KiB/conn | ratio |",
        "|---|---|---|---|",
    ]
    for kind in KINDS:
        n, s = by["nginx"][kind]["kib_per_connection"], by["switchyard"][kind]["kib_per_connection"]
        ratio = f"{s / n:.2f}×" if n > 0 else "—"
        lines.append(f"| {kind} | {n:.2f} | {s:.2f} | {ratio} |")
    lines += ["", f"RSS with {args.flood} idle keep-alive connections (after a measured base):", "",
              "| proxy | base MiB | with the connections MiB | open |", "|---|---|---|---|"]
    for name in ("nginx", "switchyard"):
        r = by[name]["flood"]
        lines.append(f"| {name} | {r['rss_base_mib']} | {r['rss_mib']} | {r['alive']}/{r['connections']} |")
    with open(os.path.join(args.out, "idle-memory.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
