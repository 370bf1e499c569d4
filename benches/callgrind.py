#!/usr/bin/env python3
"""User-space instructions per proxied request, measured with callgrind (deterministic, unlike
timings on a shared machine).

    python3 benches/callgrind.py [BINARY ...] [--requests N]

For each switchyard binary: one demo app server as the upstream, the proxy under callgrind
with 1 worker thread, a warm-up, then callgrind's counters are zeroed, exactly N requests are
sent over 4 keep-alive connections, the counters are dumped, and the total is divided by N.
Everything on 127.0.0.1. Needs valgrind (Debian: valgrind).
"""

import argparse
import glob
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from loopback import free_port, wait_port  # noqa: E402

CONFIG = """listen: ["127.0.0.1:{port}"]
admin: {{listen: "127.0.0.1:{admin}"}}
threads: 1
access_log: off
watch: false
upstreams:
  app:
    servers: [{{addr: "127.0.0.1:{up}"}}]
"""


def send(port, n, conns=4):
    """Send n GET requests over `conns` keep-alive connections; every answer must be 200."""
    bad = []

    def worker(count):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(count):
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            if r.status != 200:
                bad.append(r.status)
        c.close()

    threads = [threading.Thread(target=worker, args=(n // conns,)) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bad:
        sys.exit(f"{len(bad)} requests failed: {bad[:5]}")
    return (n // conns) * conns


def measure(binary, requests):
    tmp = tempfile.mkdtemp(prefix="switchyard-callgrind-")
    up, port, admin = free_port(), free_port(), free_port()
    app = subprocess.Popen([binary, "demo-app", "--listen", f"127.0.0.1:{up}", "--name", "up"],
                           stdin=subprocess.PIPE,  # the demo app exits when stdin closes
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conf = os.path.join(tmp, "switchyard.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, admin=admin, up=up))
    out = os.path.join(tmp, "cg.out")
    proxy = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "-c", conf],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "valgrind.log"), "w"),
        env=dict(os.environ, RUST_LOG="warn"))
    try:
        if not (wait_port(up, 30) and wait_port(port, 120)):
            sys.exit("the proxy or the upstream did not start under valgrind")
        send(port, 400)
        subprocess.run(["callgrind_control", "-z", str(proxy.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        n = send(port, requests)
        subprocess.run(["callgrind_control", "-d", str(proxy.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        dumps = [d for d in glob.glob(out + "*") if d != out]
        total = 0
        for d in dumps:
            with open(d) as f:
                m = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
                if m:
                    total = max(total, int(m.group(1)))
        return total / n
    finally:
        proxy.send_signal(signal.SIGINT)
        try:
            proxy.wait(60)
        except subprocess.TimeoutExpired:
            proxy.kill()
        app.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="*",
                    default=[os.path.join(os.path.dirname(__file__), "..", "target/release/switchyard")])
    ap.add_argument("--requests", type=int, default=4000)
    args = ap.parse_args()
    for b in args.binaries:
        print(f"{b}: {measure(b, args.requests):,.0f} instructions per request "
              f"({args.requests} keep-alive requests, 1 worker)", flush=True)


if __name__ == "__main__":
    main()
