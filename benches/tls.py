#!/usr/bin/env python3
"""TLS and HTTP/2 side by side: switchyard, nginx and HAProxy terminating TLS for the same job.

Started by benches/tls.sh. The same three upstream nginx instances as benches/compare.py, the
same ECDSA P-256 certificate for every proxy, one worker each (the cost per core), TLS 1.3
(what the clients negotiate). Three loads, each with the proxy's CPU seconds read from /proc:

- handshakes: wrk with `Connection: close`, so every request is a new TCP connection and a full
  TLS handshake: handshakes (= requests) per CPU-second;
- https keep-alive: wrk over long-lived TLS connections: requests per CPU-second;
- h2: h2load, 10 connections x 10 concurrent streams: requests per CPU-second.

Writes benches/results/tls.md and tls.json. Everything listens on 127.0.0.1 and stops by
itself.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import compare  # noqa: E402
from compare import WRK_LUA, WEIGHTS, Upstream, cpu_seconds, peak_rss_mib  # noqa: E402
from loopback import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")

CLOSE_LUA = WRK_LUA + '\nwrk.headers["Connection"] = "close"\n'

# compare.py's configurations, the listener made TLS (and h2 by ALPN).
NGINX_CONF = compare.NGINX_CONF.replace(
    "listen 127.0.0.1:{port} reuseport;",
    "listen 127.0.0.1:{port} ssl http2 reuseport;\n"
    "        http2_max_concurrent_streams 128;\n"
    "        ssl_certificate {cert};\n"
    "        ssl_certificate_key {key};\n"
    "        ssl_protocols TLSv1.2 TLSv1.3;")
HAPROXY_CONF = compare.HAPROXY_CONF.replace(
    "bind 127.0.0.1:{port}", "bind 127.0.0.1:{port} ssl crt {pem} alpn h2,http/1.1").replace(
    "X-Forwarded-Proto http", "X-Forwarded-Proto https")
assert "ssl crt" in HAPROXY_CONF and "ssl_certificate" in NGINX_CONF

SWITCHYARD_CONF = """
listen:
  - addr: "127.0.0.1:{port}"
    tls: {{certificates: [{{cert: "{cert}", key: "{key}"}}]}}
admin: {{listen: "127.0.0.1:{admin}"}}
threads: 1
access_log: off
watch: false
upstreams:
  app:
    balance: least_conn
    servers:
{servers}
"""


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    both = os.path.join(d, "both.pem")
    with open(both, "w") as f:
        f.write(open(cert).read() + open(key).read())
    return cert, key, both


class Proxy(compare.Proxy):
    """compare.Proxy (pids, stop) with TLS listeners."""

    def __init__(self, kind, binary, tmp, upstreams, cert):
        self.kind = kind
        self.port = free_port()
        d = os.path.join(tmp, f"{kind}-{self.port}")
        os.makedirs(d, exist_ok=True)
        ups = [(u.port, w) for u, w in zip(upstreams, WEIGHTS)]
        crt, key, both = cert
        if kind == "nginx":
            servers = "\n".join(f"        server 127.0.0.1:{p} weight={w};" for p, w in ups)
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(workers=1, dir=d, servers=servers, port=self.port, cert=crt, key=key))
            cmd = [binary, "-c", conf, "-p", d]
        elif kind == "haproxy":
            servers = "\n".join(f"    server s{i} 127.0.0.1:{p} weight {w}" for i, (p, w) in enumerate(ups))
            conf = os.path.join(d, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(HAPROXY_CONF.format(workers=1, servers=servers, port=self.port, pem=both))
            cmd = [binary, "-db", "-f", conf]
        else:
            servers = "\n".join(f'      - addr: "127.0.0.1:{p}"\n        weight: {w}' for p, w in ups)
            conf = os.path.join(d, "switchyard.yaml")
            with open(conf, "w") as f:
                f.write(SWITCHYARD_CONF.format(port=self.port, admin=free_port(), servers=servers, cert=crt, key=key))
            cmd = [binary, "-c", conf]
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr.log"), "w"), env=env)
        if not wait_port(self.port):
            sys.exit(f"{kind} did not start:\n" + open(os.path.join(d, "stderr.log")).read())


def wrk(port, connections, duration, lua):
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--timeout", "5s",
         "-s", lua, f"https://127.0.0.1:{port}/"],
        capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT "):])
            return r["requests"], r["duration_us"] / 1e6, r["errors"]
    sys.exit(f"wrk failed: {out.stdout}\n{out.stderr}")


def h2load(port, duration):
    out = subprocess.run(
        ["h2load", "-c", "10", "-m", "10", "-t", "2", "-D", str(duration), "--warm-up-time", "1",
         f"https://127.0.0.1:{port}/"],
        capture_output=True, text=True)
    ok, secs, errors = None, float(duration), 0
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("finished in"):
            # "finished in 10.00s, 12345.60 req/s, ..."
            secs = float(line.split()[2].rstrip("s,"))
        if line.startswith("requests:"):
            # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
            parts = line.replace(",", "").split()
            ok = int(parts[7])
            errors = int(parts[9]) + int(parts[11])
    if ok is None:
        sys.exit(f"h2load failed: {out.stdout}\n{out.stderr}")
    return ok, secs, errors


def measure(proxy, load):
    pids = proxy.pids()
    cpu0 = cpu_seconds(pids)
    requests, secs, errors = load()
    cpu = cpu_seconds(pids) - cpu0
    return {"requests": requests, "rps": requests / secs, "cpu_s": cpu,
            "per_cpu_s": requests / cpu if cpu > 0 else 0, "errors": errors,
            "rss_mib": peak_rss_mib(pids)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard", default=os.path.join(ROOT, "target/release/switchyard"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--proxies", default="switchyard,nginx,haproxy")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="switchyard-tls-bench-")
    lua_keep, lua_close = os.path.join(tmp, "keep.lua"), os.path.join(tmp, "close.lua")
    open(lua_keep, "w").write(WRK_LUA)
    open(lua_close, "w").write(CLOSE_LUA)
    cert = make_cert(tmp)
    upstreams = [Upstream(args.nginx, tmp, i) for i in range(3)]
    binaries = {"switchyard": args.switchyard, "nginx": args.nginx, "haproxy": args.haproxy}
    loads = [
        ("handshakes (new connection per request)", lambda p: wrk(p.port, 20, args.duration, lua_close)),
        ("https keep-alive, 50 connections", lambda p: wrk(p.port, 50, args.duration, lua_keep)),
        ("h2, 10 connections x 10 streams", lambda p: h2load(p.port, args.duration)),
    ]
    rows = []
    try:
        for kind in args.proxies.split(","):
            p = Proxy(kind, binaries[kind], tmp, upstreams, cert)
            try:
                # Warm up: connections, caches, the upstream pool.
                wrk(p.port, 50, 2, lua_keep)
                for name, load in loads:
                    r = measure(p, lambda: load(p))
                    r.update(proxy=kind, load=name)
                    rows.append(r)
                    print(f"{kind:10} {name:42} {r['rps']:8.0f}/s {r['per_cpu_s']:8.0f} per CPU-s "
                          f"errors {r['errors']}", flush=True)
            finally:
                p.stop()
    finally:
        for u in upstreams:
            u.stop()

    os.makedirs(args.out, exist_ok=True)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "duration_s": args.duration}
    with open(os.path.join(args.out, "tls.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    lines = [
        "# TLS and HTTP/2: switchyard, nginx and HAProxy side by side",
        "",
        f"`benches/tls.sh`, {meta['date']}, {meta['machine']}, {args.duration} s per load, one "
        "worker per proxy, the same ECDSA P-256 certificate, TLS 1.3 negotiated, three upstream "
        "nginx servers answering 6 bytes. Per CPU-second = what the proxy process did per second "
        "of its own CPU time (user + system, from /proc). The load generator shares the machine.",
        "",
        "| load | proxy | per second | per CPU-second | vs nginx | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, _ in loads:
        base = next((r["per_cpu_s"] for r in rows if r["proxy"] == "nginx" and r["load"] == name), 0)
        for r in [r for r in rows if r["load"] == name]:
            ratio = f"{r['per_cpu_s'] / base:.2f}x" if base else "-"
            lines.append(f"| {name} | {r['proxy']} | {r['rps']:.0f} | {r['per_cpu_s']:.0f} | {ratio} | {r['errors']} |")
    with open(os.path.join(args.out, "tls.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
