#!/usr/bin/env python3
"""Measure HTTP/1.1 edge cases against switchyard and nginx, side by side.

Sends the same bytes to each proxy (both in front of the same recording upstream on
127.0.0.1) and reports what the client got and what reached the upstream. Prints the
Markdown table that the README's conformance section quotes.

    python3 tools/conformance.py [--switchyard target/release/switchyard] [--nginx nginx]

Needs nginx installed (Debian: apt-get install nginx). Everything listens on 127.0.0.1 and
stops when the script ends.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from loopback import free_port, wait_port

# --------------------------------------------------------------------------------------------
# The recording upstream


class Upstream:
    """A raw HTTP/1.1 server that records every request and answers per path."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def reset(self):
        with self.lock:
            self.seen = []

    def requests(self):
        with self.lock:
            return list(self.seen)

    def serve(self, c):
        c.settimeout(10)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.split(b"\r\n")
                method, target = lines[0].split(b" ")[:2]
                headers = []
                for l in lines[1:]:
                    k, _, v = l.partition(b":")
                    headers.append((k.strip().lower(), v.strip()))
                hd = dict(headers)
                body = b""
                if hd.get(b"transfer-encoding", b"").lower() == b"chunked":
                    while True:
                        while b"\r\n" not in buf:
                            buf += c.recv(65536)
                        size_line, buf = buf.split(b"\r\n", 1)
                        n = int(size_line.split(b";")[0], 16)
                        while len(buf) < n + 2:
                            buf += c.recv(65536)
                        body += buf[:n]
                        buf = buf[n + 2 :]
                        if n == 0:
                            break
                elif b"content-length" in hd:
                    n = int(hd[b"content-length"])
                    while len(buf) < n:
                        buf += c.recv(65536)
                    body, buf = buf[:n], buf[n:]
                with self.lock:
                    self.seen.append((method, target, headers, body))
                keep = self.respond(c, method, target, hd)
                if not keep:
                    c.close()
                    return
        except (OSError, ValueError):
            c.close()

    def respond(self, c, method, target, hd):
        t = target.decode("latin-1")
        canned = {
            "/resp/te-cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "/resp/te-double": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "/resp/te-unknown": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chnked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "/resp/te-http10": b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "/resp/204-body": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
            "/resp/304-body": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello",
            "/resp/head-body": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "/resp/103": b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "/resp/until-close": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until close",
        }
        if t in canned:
            c.sendall(canned[t])
            return False
        if hd.get(b"upgrade", b"").lower() == b"websocket" and t == "/ws-refused":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno")
            return True
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True


# --------------------------------------------------------------------------------------------
# Proxies


NGINX_CONF = """
worker_processes 1;
daemon off;
error_log {dir}/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_header_timeout 2s;
    client_body_timeout 2s;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream app {{ server 127.0.0.1:{up}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""

SWITCHYARD_CONF = """
listen: ["127.0.0.1:{port}"]
admin: {{listen: "127.0.0.1:{admin}"}}
threads: 1
access_log: off
watch: false
limits: {{header_read_timeout: 2s, body_read_timeout: 2s}}
upstreams:
  app:
    servers: [{{addr: "127.0.0.1:{up}"}}]
    retry: {{tries: 1}}
"""


def start_nginx(binary, up, tmp):
    port = free_port()
    d = os.path.join(tmp, "nginx")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, up=up, port=port))
    p = subprocess.Popen([binary, "-c", conf, "-p", d], stderr=subprocess.DEVNULL)
    if not wait_port(port, timeout=10):
        sys.exit("nginx did not start")
    return p, port


def start_switchyard(binary, up, tmp, conf_text):
    port, admin = free_port(), free_port()
    conf = os.path.join(tmp, "switchyard.yaml")
    with open(conf, "w") as f:
        f.write(conf_text.format(port=port, admin=admin, up=up))
    p = subprocess.Popen([binary, "-c", conf], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    if not wait_port(port, timeout=10):
        sys.exit("switchyard did not start")
    return p, port


# --------------------------------------------------------------------------------------------
# Cases

GOOD = b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n"


def H(lines, body=b""):
    return b"".join(l + b"\r\n" for l in lines) + b"\r\n" + body


CASES = [
    # (name, RFC section, bytes, note)
    ("invalid Content-Length", "9112 §6.3", H([b"POST /a HTTP/1.1", b"Host: t", b"Content-Length: 1x"], b"a")),
    ("two equal Content-Length", "9110 §8.6", H([b"POST /a HTTP/1.1", b"Host: t", b"Content-Length: 1", b"Content-Length: 1"], b"a")),
    ("conflicting Content-Length", "9112 §6.3", H([b"POST /a HTTP/1.1", b"Host: t", b"Content-Length: 1", b"Content-Length: 2"], b"ab")),
    ("Transfer-Encoding not ending in chunked", "9112 §6.3", H([b"POST /a HTTP/1.1", b"Host: t", b"Transfer-Encoding: gzip"], b"abc")),
    ("chunked applied twice", "9112 §6.1", H([b"POST /a HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked, chunked"], b"1\r\na\r\n0\r\n\r\n")),
    ("Transfer-Encoding in HTTP/1.0", "9112 §6.1", H([b"POST /a HTTP/1.0", b"Host: t", b"Transfer-Encoding: chunked"], b"1\r\na\r\n0\r\n\r\n")),
    ("Content-Length with Transfer-Encoding", "9112 §6.1", H([b"POST /a HTTP/1.1", b"Host: t", b"Content-Length: 3", b"Transfer-Encoding: chunked"], b"0\r\n\r\n") + b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("space before the colon", "9112 §5.1", H([b"GET /a HTTP/1.1", b"Host : t"])),
    ("obs-fold", "9112 §5.2", H([b"GET /a HTTP/1.1", b"Host: t", b"X-A: 1", b" 2"])),
    ("bare CR in a field", "9112 §2.2", H([b"GET /a HTTP/1.1", b"Host: t", b"X-A: a\rb"])),
    ("NUL in a field", "9110 §5.5", H([b"GET /a HTTP/1.1", b"Host: t", b"X-A: a\x00b"])),
    ("control character in a field", "9110 §5.5", H([b"GET /a HTTP/1.1", b"Host: t", b"X-A: a\x01b"])),
    ("malformed chunk size", "9112 §7.1", H([b"POST /a HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked"], b"zz\r\nabc\r\n0\r\n\r\n")),
    ("overflowing chunk size", "9112 §7.1", H([b"POST /a HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked"], b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n")),
    ("over-long chunk extension", "9112 §7.1.1", H([b"POST /a HTTP/1.1", b"Host: t", b"Transfer-Encoding: chunked"], b"1;ext=" + b"x" * 20000 + b"\r\na\r\n0\r\n\r\n")),
    ("HTTP/1.1 without Host", "9112 §3.2", H([b"GET /a HTTP/1.1"])),
    ("two Host fields", "9112 §3.2", H([b"GET /a HTTP/1.1", b"Host: t", b"Host: u"])),
    ("absolute-form target, other Host", "9112 §3.2.2", H([b"GET http://target.example/a HTTP/1.1", b"Host: other.example"])),
    ("`*` with GET", "9112 §3.2.4", H([b"GET * HTTP/1.1", b"Host: t"])),
    ("OPTIONS *", "9112 §3.2.4", H([b"OPTIONS * HTTP/1.1", b"Host: t"])),
    ("CONNECT", "9110 §9.3.6", H([b"CONNECT 127.0.0.1:22 HTTP/1.1", b"Host: 127.0.0.1:22"])),
    ("fragment in an absolute target", "9110 §4.2.5", H([b"GET http://t#@evil.example/ HTTP/1.1", b"Host: t"])),
    ("Connection names X-Forwarded-For", "9110 §7.6.1", H([b"GET /a HTTP/1.1", b"Host: t", b"Connection: X-Forwarded-For", b"X-Forwarded-For: 6.6.6.6"])),
    ("Upgrade: h2c", "9113 §3.1", H([b"GET /a HTTP/1.1", b"Host: t", b"Connection: Upgrade, HTTP2-Settings", b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"])),
    ("WebSocket refused by the upstream (200)", "6455 §4.1", H([b"GET /ws-refused HTTP/1.1", b"Host: t", b"Connection: Upgrade", b"Upgrade: websocket", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Version: 13"]) + GOOD),
    ("upstream: TE with CL", "9112 §6.1", H([b"GET /resp/te-cl HTTP/1.1", b"Host: t"])),
    ("upstream: chunked twice", "9112 §6.1", H([b"GET /resp/te-double HTTP/1.1", b"Host: t"])),
    ("upstream: unknown transfer coding", "9112 §6.1", H([b"GET /resp/te-unknown HTTP/1.1", b"Host: t"])),
    ("upstream: TE in an HTTP/1.0 response", "9112 §6.1", H([b"GET /resp/te-http10 HTTP/1.1", b"Host: t"])),
    ("upstream: 204 with a body", "9110 §15.3.5", H([b"GET /resp/204-body HTTP/1.1", b"Host: t"])),
    ("upstream: 304 with a body", "9110 §15.4.5", H([b"GET /resp/304-body HTTP/1.1", b"Host: t"])),
    ("upstream: HEAD answered with a body", "9110 §9.3.2", H([b"HEAD /resp/head-body HTTP/1.1", b"Host: t"])),
    ("upstream: 103 Early Hints", "9110 §15.2", H([b"GET /resp/103 HTTP/1.1", b"Host: t"])),
    ("upstream: no length, ends at close", "9112 §6.3", H([b"GET /resp/until-close HTTP/1.1", b"Host: t"])),
    ("request line over 8 KiB", "9112 §3", H([b"GET /" + b"a" * 9000 + b" HTTP/1.1", b"Host: t"])),
    ("200 header fields", "6585 §5", H([b"GET /a HTTP/1.1", b"Host: t"] + [b"X-%d: v" % i for i in range(200)])),
    ("a 40 KiB header field", "6585 §5", H([b"GET /a HTTP/1.1", b"Host: t", b"X-Big: " + b"v" * 40000])),
    ("two pipelined requests", "9112 §9.3.2", H([b"GET /p1 HTTP/1.1", b"Host: t"]) + H([b"GET /p2 HTTP/1.1", b"Host: t", b"Connection: close"])),
    ("TLS ClientHello on the HTTP port", "—", bytes.fromhex("16030100c4010000c00303") + os.urandom(64)),
    ("random bytes", "—", os.urandom(48).replace(b"\r", b"x").replace(b"\n", b"y") + b"\r\n\r\n"),
]


def exchange(port, data, timeout=3.0):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    closed = False
    end = time.time() + timeout
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not d:
            closed = True
            break
        out += d
    s.close()
    return out, closed


def describe(out, closed, seen):
    statuses = []
    rest = out
    while rest.startswith(b"HTTP/"):
        line = rest.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        statuses.append(parts[1].decode() if len(parts) > 1 else "?")
        if b"\r\n\r\n" not in rest:
            break
        head, rest = rest.split(b"\r\n\r\n", 1)
        hl = head.lower()
        if b"content-length:" in hl:
            n = int(hl.split(b"content-length:")[1].split(b"\r\n")[0])
            body, rest = rest[:n], rest[n:]
        elif b"transfer-encoding: chunked" in hl:
            end = rest.find(b"0\r\n\r\n")
            rest = rest[end + 5 :] if end >= 0 else b""
        elif not parts[1].startswith(b"1"):
            rest = b""
    if statuses:
        what = ", ".join(statuses)
        if rest.strip():
            what += f" + {len(rest)} stray bytes"
    else:
        what = "no answer"
    if closed:
        what += ", closed"
    targets = [t.decode("latin-1")[:40] for (_, t, _, _) in seen]
    if not seen:
        up = "nothing"
    else:
        up = " ".join(targets)
        hosts = {h.decode("latin-1") for (_, _, hs, _) in seen for (k, h) in hs if k == b"host"}
        if hosts:
            up += " (Host " + ", ".join(sorted(hosts)) + ")"
    return f"{what}; upstream got {up}"


def measure(port, upstream):
    results = []
    for name, section, data in CASES:
        upstream.reset()
        out, closed = exchange(port, data)
        time.sleep(0.05)
        r = describe(out, closed, upstream.requests())
        ok, _ = exchange(port, GOOD, 2)
        if not ok.startswith(b"HTTP/1.1 200"):
            r += "; **next request failed**"
        results.append(r)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard", default="target/release/switchyard")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    args = ap.parse_args()
    up = Upstream()
    tmp = tempfile.mkdtemp()
    procs = []
    try:
        sy, sy_port = start_switchyard(args.switchyard, up.port, tmp, SWITCHYARD_CONF)
        procs.append(sy)
        ng, ng_port = start_nginx(args.nginx, up.port, tmp)
        procs.append(ng)
        version = subprocess.run([args.nginx, "-v"], capture_output=True, text=True).stderr.strip()
        sy_r = measure(sy_port, up)
        ng_r = measure(ng_port, up)
        print(f"| case | RFC | switchyard | {version.replace('nginx version: ', '')} |")
        print("|---|---|---|---|")
        for (name, section, _), a, b in zip(CASES, sy_r, ng_r):
            print(f"| {name} | {section} | {a} | {b} |")
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
