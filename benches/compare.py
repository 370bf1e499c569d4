#!/usr/bin/env python3
"""Side-by-side load comparison: switchyard, nginx, HAProxy and Caddy doing the same job.

Started by benches/compare.sh (which installs what is missing). For each proxy, in turn, on
the same three upstream servers (nginx instances answering a fixed 6-byte body on loopback):
least connections with weights 3/3/2 (Caddy's least_conn has no weights), upstream keep-alive,
forwarded headers, no access log;
at 1 worker and at all cores; wrk at 50 and 200 connections. Recorded per run: requests/s,
p50/p99/p99.9 latency, the proxy's CPU seconds (from /proc), requests per CPU-second, peak
RSS and errors. Then a failure run: one upstream killed for 5 s mid-run and restarted.

Writes benches/results/results.md, results.json and chart.png. Everything listens on
127.0.0.1 and stops by itself.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from loopback import free_port, wait_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

WRK_LUA = r"""
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
               + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    "RESULT {\"requests\":%d,\"duration_us\":%d,\"errors\":%d,\"non2xx\":%d," ..
    "\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d}\n",
    summary.requests, summary.duration, errors, summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
"""


def wait_closed(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            time.sleep(0.05)
        except OSError:
            return True
    return False


def tree_pids(pid):
    """The process and all its descendants."""
    pids = [pid]
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == pid:
                        pids.extend(tree_pids(int(entry)))
                except OSError:
                    pass
    except OSError:
        pass
    return pids


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / CLK_TCK


def peak_rss_mib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# ----------------------------------------------------------------------------------------------
# Upstreams: three nginx instances answering a fixed body.

UPSTREAM_CONF = """
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
        listen 127.0.0.1:{port} reuseport;
        location / {{ return 200 "hello\\n"; }}
    }}
}}
"""


class Upstream:
    def __init__(self, nginx, tmp, i):
        self.nginx = nginx
        self.dir = os.path.join(tmp, f"upstream{i}")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(UPSTREAM_CONF.format(dir=self.dir, port=self.port))
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([self.nginx, "-c", self.conf, "-p", self.dir], stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            sys.exit("upstream nginx did not start")

    def kill(self):
        for p in tree_pids(self.proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()
        wait_closed(self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


# ----------------------------------------------------------------------------------------------
# The proxies, configured alike (templates in proxy_configs.py).

from proxy_configs import (CADDY_CONF, CADDY_FAILURE, HAPROXY_CONF, NGINX_CONF,  # noqa: E402
                           SWITCHYARD_CONF, WEIGHTS)


class Proxy:
    def __init__(self, kind, binary, tmp, upstreams, workers, failure_settings=False):
        self.kind = kind
        self.port = free_port()
        d = os.path.join(tmp, f"{kind}-{workers}-{self.port}")
        os.makedirs(d, exist_ok=True)
        ups = [(u.port, w) for u, w in zip(upstreams, WEIGHTS)]
        if kind == "nginx":
            fails = " max_fails=5 fail_timeout=30s" if failure_settings else ""
            servers = "\n".join(f"        server 127.0.0.1:{p} weight={w}{fails};" for p, w in ups)
            conf = os.path.join(d, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(workers=workers, dir=d, servers=servers, port=self.port))
            cmd = [binary, "-c", conf, "-p", d]
        elif kind == "haproxy":
            check = " check inter 2s fall 3 rise 2 observe layer7 error-limit 5 on-error mark-down" if failure_settings else ""
            servers = "\n".join(f"    server s{i} 127.0.0.1:{p} weight {w}{check}" for i, (p, w) in enumerate(ups))
            conf = os.path.join(d, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(HAPROXY_CONF.format(workers=workers, servers=servers, port=self.port))
            cmd = [binary, "-db", "-f", conf]
        elif kind == "caddy":
            conf = os.path.join(d, "Caddyfile")
            with open(conf, "w") as f:
                f.write(CADDY_CONF.format(port=self.port, servers=" ".join(f"127.0.0.1:{p}" for p, _ in ups),
                                          failure=CADDY_FAILURE if failure_settings else ""))
            cmd = [binary, "run", "--config", conf, "--adapter", "caddyfile"]
        else:
            servers = "\n".join(f'      - addr: "127.0.0.1:{p}"\n        weight: {w}' for p, w in ups)
            conf = os.path.join(d, "switchyard.yaml")
            with open(conf, "w") as f:
                f.write(SWITCHYARD_CONF.format(workers=workers, port=self.port, admin=free_port(), servers=servers))
            cmd = [binary, "-c", conf]
        env = dict(os.environ, RUST_LOG="warn", GOMAXPROCS=str(workers), XDG_DATA_HOME=d, XDG_CONFIG_HOME=d)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr.log"), "w"), env=env)
        if not wait_port(self.port):
            sys.exit(f"{kind} did not start:\n" + open(os.path.join(d, "stderr.log")).read())

    def pids(self):
        return tree_pids(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGINT if self.kind != "haproxy" else signal.SIGUSR1)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            for p in self.pids():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()


def wrk(port, connections, duration, lua):
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "5s",
         "-s", lua, f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    sys.exit(f"wrk failed: {out.stdout}\n{out.stderr}")


def run_load(proxy, connections, duration, lua):
    # Warm up connections and caches, then measure.
    wrk(proxy.port, connections, 2, lua)
    pids = proxy.pids()
    cpu0 = cpu_seconds(pids)
    r = wrk(proxy.port, connections, duration, lua)
    cpu = cpu_seconds(pids) - cpu0
    secs = r["duration_us"] / 1e6
    return {
        "rps": r["requests"] / secs,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "p999_ms": r["p999_us"] / 1000,
        "cpu_s": cpu,
        "req_per_cpu_s": r["requests"] / cpu if cpu > 0 else 0,
        "rss_mib": peak_rss_mib(pids),
        "errors": r["errors"],
        "requests": r["requests"],
    }


def run_failure(proxy, upstreams, lua, phase):
    """Three phases of `phase` seconds; upstream #2 is killed 1 s into the second and restarted
    5 s later. Returns errors over all phases and the p99 of the fault phase."""
    total_errors, total_requests = 0, 0
    fault = None
    for i in range(3):
        if i == 1:
            import threading

            def fault_injection():
                time.sleep(1)
                upstreams[1].kill()
                time.sleep(5)
                upstreams[1].start()

            t = threading.Thread(target=fault_injection)
            t.start()
            r = wrk(proxy.port, 50, phase, lua)
            t.join()
            fault = r
        else:
            r = wrk(proxy.port, 50, phase, lua)
        total_errors += r["errors"]
        total_requests += r["requests"]
    return {"errors": total_errors, "requests": total_requests, "fault_p99_ms": fault["p99_us"] / 1000,
            "fault_errors": fault["errors"]}


def chart(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
        return
    scenarios = sorted({(r["workers"], r["connections"]) for r in rows})
    proxies = [p for p in ["switchyard", "nginx", "haproxy", "caddy"] if any(r["proxy"] == p for r in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(proxies)
    for ax, key, title in [(axes[0], "req_per_cpu_s", "requests per proxy CPU-second"),
                           (axes[1], "p99_ms", "p99 latency (ms)")]:
        for i, proxy in enumerate(proxies):
            vals = []
            for s in scenarios:
                match = [r for r in rows if r["proxy"] == proxy and (r["workers"], r["connections"]) == s]
                vals.append(match[0][key] if match else 0)
            ax.bar([x + (i - (len(proxies) - 1) / 2) * width for x in range(len(scenarios))], vals, width, label=proxy)
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels([f"{w} worker{'s' if w > 1 else ''}\n{c} conns" for w, c in scenarios])
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--switchyard", default=os.path.join(ROOT, "target/release/switchyard"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--caddy", default=shutil.which("caddy") or "/usr/bin/caddy")
    ap.add_argument("--proxies", default="switchyard,nginx,haproxy,caddy")
    ap.add_argument("--connections", default="50,200")
    ap.add_argument("--workers", default="1,all")
    ap.add_argument("--no-failure", action="store_true")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--baseline", help="another switchyard binary (an older build) to run in the "
                    "same session as `baseline`, for before/after figures")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    workers = sorted({cores if w == "all" else int(w) for w in args.workers.split(",")})
    conns = [int(c) for c in args.connections.split(",")]
    proxies = args.proxies.split(",")
    binaries = {"switchyard": args.switchyard, "nginx": args.nginx, "haproxy": args.haproxy,
                "caddy": args.caddy}
    if args.baseline:
        # Run with the same config as switchyard (Proxy treats every other kind that way).
        binaries["baseline"] = args.baseline
        proxies.insert(0, "baseline")

    tmp = tempfile.mkdtemp(prefix="switchyard-bench-")
    lua = os.path.join(tmp, "report.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    upstreams = [Upstream(args.nginx, tmp, i) for i in range(3)]
    rows, failures = [], []
    try:
        for w in workers:
            for kind in proxies:
                p = Proxy(kind, binaries[kind], tmp, upstreams, w)
                try:
                    for c in conns:
                        r = run_load(p, c, args.duration, lua)
                        r.update(proxy=kind, workers=w, connections=c)
                        rows.append(r)
                        print(f"{kind:10} workers={w} conns={c:3}: {r['rps']:9.0f} req/s "
                              f"{r['req_per_cpu_s']:8.0f} req/CPU-s p50 {r['p50_ms']:.2f} ms "
                              f"p99 {r['p99_ms']:.2f} ms p99.9 {r['p999_ms']:.2f} ms "
                              f"rss {r['rss_mib']:.1f} MiB errors {r['errors']}", flush=True)
                finally:
                    p.stop()
        if not args.no_failure:
            for kind in proxies:
                p = Proxy(kind, binaries[kind], tmp, upstreams, cores, failure_settings=True)
                try:
                    f = run_failure(p, upstreams, lua, 8)
                    f.update(proxy=kind)
                    failures.append(f)
                    print(f"{kind:10} failure run: {f['errors']} failed of {f['requests']}, "
                          f"p99 during the fault {f['fault_p99_ms']:.2f} ms", flush=True)
                finally:
                    p.stop()
    finally:
        for u in upstreams:
            u.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    os.makedirs(args.out, exist_ok=True)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {cores} cores, {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip() if 'model name' in open('/proc/cpuinfo').read() else 'unknown CPU'}",
        "kernel": platform.release(),
        "versions": {
            "switchyard": subprocess.run([args.switchyard, "--version"], capture_output=True, text=True).stdout.strip(),
            "nginx": subprocess.run([args.nginx, "-v"], capture_output=True, text=True).stderr.strip(),
            "haproxy": subprocess.run([args.haproxy, "-v"], capture_output=True, text=True).stdout.splitlines()[0],
            "caddy": "Caddy " + (subprocess.run([args.caddy, "version"], capture_output=True, text=True).stdout.strip()
                                 if os.path.exists(args.caddy) else "(not installed)"),
        },
        "duration_s": args.duration,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "load": rows, "failure": failures}, f, indent=2)
    md = [f"# switchyard vs nginx vs HAProxy vs Caddy", "",
          f"{meta['date']}; {meta['machine']}; Linux {meta['kernel']}.",
          f"{meta['versions']['switchyard']}; {meta['versions']['nginx']}; {meta['versions']['haproxy']}; "
          f"{meta['versions']['caddy']}.",
          f"Everything on the same machine, on loopback: wrk (2 threads), the proxy, three nginx",
          f"upstreams (1 worker each, fixed 6-byte body). {args.duration} s per run after a 2 s warm-up.",
          "", "| proxy | workers | conns | req/s | p50 ms | p99 ms | p99.9 ms | proxy CPU s | req per CPU-s | peak RSS MiB | errors |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['proxy']} | {r['workers']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                  f"{r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['cpu_s']:.1f} | {r['req_per_cpu_s']:.0f} | "
                  f"{r['rss_mib']:.1f} | {r['errors']} |")
    md += ["", "Ratios in this run (switchyard / other, requests per CPU-second):", ""]
    one = {c: next((r for r in rows if r["proxy"] == "switchyard" and r["workers"] == min(workers)
                    and r["connections"] == c), None) for c in conns}
    for w in workers:
        for c in conns:
            get = lambda k: next((r for r in rows if r["proxy"] == k and r["workers"] == w and r["connections"] == c), None)
            s, n, h, cd = get("switchyard"), get("nginx"), get("haproxy"), get("caddy")
            b = get("baseline")
            if s and b:
                md.append(f"- {w} worker(s), {c} connections: switchyard {s['req_per_cpu_s'] / b['req_per_cpu_s']:.2f}x "
                          f"the baseline build; p99 {s['p99_ms']:.2f} ms vs {b['p99_ms']:.2f}"
                          + (f"; baseline {b['req_per_cpu_s'] / n['req_per_cpu_s']:.2f}x nginx, switchyard "
                             f"{s['req_per_cpu_s'] / n['req_per_cpu_s']:.2f}x nginx" if n else ""))
            if s and n and h:
                md.append(f"- {w} worker(s), {c} connections: {s['req_per_cpu_s'] / n['req_per_cpu_s']:.2f}x nginx, "
                          f"{s['req_per_cpu_s'] / h['req_per_cpu_s']:.2f}x HAProxy"
                          + (f", {s['req_per_cpu_s'] / cd['req_per_cpu_s']:.2f}x Caddy" if cd else "")
                          + f"; p99 {s['p99_ms']:.2f} ms vs {n['p99_ms']:.2f} (nginx), {h['p99_ms']:.2f} (HAProxy)"
                          + (f", {cd['p99_ms']:.2f} (Caddy)" if cd else "")
                          + (f"; switchyard at {w} workers does {s['req_per_cpu_s'] / one[c]['req_per_cpu_s']:.2f}x "
                             f"its {min(workers)}-worker requests per CPU-second"
                             if w != min(workers) and one.get(c) else ""))
    if failures:
        md += ["", "## Failure run", "",
               "50 connections, all cores, three 8 s phases; upstream 2 is killed 1 s into the",
               "second phase and restarted 5 s later. nginx: `proxy_next_upstream error timeout`,",
               "`max_fails=5 fail_timeout=30s`. HAProxy: `retries 2`, `option redispatch`, checks",
               "every 2 s with `observe layer7`, `on-error mark-down`. Caddy: `lb_retries 2`,",
               "`max_fails 5`, `fail_duration 30s`. switchyard: its defaults",
               "(retry on error/timeout, 3 tries; breaker after 5 failures).", "",
               "| proxy | failed requests | of | failed during the fault | p99 during the fault ms |", "|---|---|---|---|---|"]
        for f in failures:
            md.append(f"| {f['proxy']} | {f['errors']} | {f['requests']} | {f['fault_errors']} | {f['fault_p99_ms']:.2f} |")
    md += ["", "![requests per CPU-second and p99](chart.png)", ""]
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(md))
    chart(rows, os.path.join(args.out, "chart.png"))
    print("\n".join(md))


if __name__ == "__main__":
    main()
