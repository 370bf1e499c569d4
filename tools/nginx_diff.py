#!/usr/bin/env python3
"""Differential test of `switchyard import-nginx`: run each nginx config of a corpus with real
nginx, then its import with switchyard, send both the same requests and compare what a user
sees.

    python3 tools/nginx_diff.py [--switchyard target/release/switchyard] [CONF ...]

Without CONF, every tests/nginx/*.conf is run. Each config is copied to a scratch directory
with its placeholders filled in (@A1@.. mock upstreams, @LISTEN@/@LISTEN2@ free loopback ports,
@REFUSED@ a closed port, @ROOT@ the scratch directory, @TLS@ the example certificates);
literal addresses in `listen`, upstream `server` and `proxy_pass` lines are moved to loopback
too, so every byte of traffic stays on 127.0.0.1.

The requests are the config's `# diff: [@LISTENn@] METHOD PATH [Name=Value ...]` lines
(`PROXY-V1=ADDR` / `PROXY-V2=ADDR` is no header: the connection starts with a PROXY protocol
header naming ADDR, for `listen … proxy_protocol` configs)
(`443 GET …` or `@LISTEN2@ GET …` for another listener; default: `GET /` with each
`server_name` and with an unknown host). Compared, per request:
the status (or that the connection was closed without one), which upstream answered (the
`upstream` block of the mock server), the target and the `proxy_set_header` fields the
upstream received, the `add_header`/`proxy_hide_header` fields of the answer, `Location`,
and the body of answers that did not come from an upstream when they are not the proxy's
own error pages (whose wording differs) or come from `error_page` files. Differences that
are intended are listed in KNOWN below, each with its reason.

Exit status: 0 when every answer matched, 1 otherwise. Needs `nginx` on PATH (Debian's
package); a config that nginx itself refuses fails the run.
"""
import argparse, glob, http.client, json, os, re, shutil, signal, socket, socketserver, ssl, subprocess
import sys, tempfile, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CORPUS = os.path.join(ROOT, "tests", "nginx")
TLS = os.path.join(ROOT, "conf", "examples", "tls")

# Fields that are hop-by-hop (switchyard manages them itself, SPEC §3) or differ per request.
# Compared only where nginx sends them: X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and
# X-Forwarded-Host, which switchyard adds to every forwarded request (SPEC §3) and nginx only
# when told to.
NOT_COMPARED = {"connection", "upgrade", "keep-alive", "te", "x-request-id"}
ADDED = ["sent x-forwarded-for", "sent x-real-ip", "sent x-forwarded-proto", "sent x-forwarded-host"]


class Mock(BaseHTTPRequestHandler):
    """An upstream: answers 200 with what it received as JSON, or `/status/NNN` with NNN."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        m = re.search(r"/status/(\d{3})", self.path)
        status = int(m.group(1)) if m else 200
        body = json.dumps({
            "mock": self.server.label,
            "method": self.command,
            "target": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Mock", self.server.label)
        self.send_header("X-Powered-By", "mock")
        if self.close_connection:
            # It closes after this answer (the request said `Connection: close`, as nginx's
            # HTTP/1.0 to upstreams does): say so, or nginx keeps the connection for its
            # `keepalive` pool and a later POST on it gets 502 (seen once in CI on 08-limits).
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = handle_any


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mock(label):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Mock)
    srv.daemon_threads = True
    srv.handle_error = lambda *args: None  # a proxy closing a kept-alive connection
    srv.label = label
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        # BaseHTTPRequestHandler wants a (host, port) client address.
        return conn, ("unix", 0)


def start_unix_mock(label, path):
    srv = UnixHTTPServer(path, Mock)
    srv.handle_error = lambda *args: None
    srv.label = label
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Scratch:
    """A config's copy with every address on loopback, and the mocks behind it."""

    def __init__(self, conf):
        self.dir = tempfile.mkdtemp(prefix="nginx-diff-")
        self.mocks = {}  # original address -> server
        self.listens = {}  # original listen address -> 127.0.0.1:port
        shutil.copytree(CORPUS, self.dir, dirs_exist_ok=True)
        os.makedirs(os.path.join(self.dir, "static"), exist_ok=True)
        # The config, and what it may include from subdirectories.
        files = [os.path.join(self.dir, os.path.basename(conf))]
        files += glob.glob(os.path.join(self.dir, "*", "**", "*.conf"), recursive=True)
        texts = {f: open(f).read() for f in files}
        # Upstream labels: the `upstream` block an address is listed in.
        labels = {}
        for text in texts.values():
            for name, block in re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", text):
                for addr in re.findall(r"\bserver\s+([^\s;]+)", block):
                    labels.setdefault(addr, name)
        self.upstream_names = {n for t in texts.values() for n in re.findall(r"upstream\s+(\S+)\s*\{", t)}
        for f, text in texts.items():
            text = text.replace("@ROOT@", self.dir).replace("@TLS@", TLS)
            text = text.replace("@REFUSED@", "127.0.0.1:9")
            text = re.sub(r"(\blisten\s+)([^\s;]+)", lambda m: m.group(1) + self.listen(m.group(2)), text)
            text = re.sub(r"(\bserver\s+)([^\s;{]+)(?=[^;{]*;)",
                          lambda m: m.group(1) + self.upstream(m.group(2), labels), text)
            text = re.sub(r"(\bproxy_pass\s+https?://)([^/;\s$]+)",
                          lambda m: m.group(1) + self.direct(m.group(2)), text)
            open(f, "w").write(text)
        self.conf = os.path.join(self.dir, os.path.basename(conf))

    def listen(self, addr):
        if addr not in self.listens:
            self.listens[addr] = f"127.0.0.1:{free_port()}"
        return self.listens[addr]

    def upstream(self, addr, labels):
        if addr.startswith("unix:"):
            # A Unix-socket server: a mock on a socket in the scratch directory.
            if addr not in self.mocks:
                path = os.path.join(self.dir, "u%d.sock" % len(self.mocks))
                self.mocks[addr] = start_unix_mock(labels.get(addr, addr), path)
                self.mocks[addr].path = path
            return "unix:" + self.mocks[addr].path
        if addr == "127.0.0.1:9":
            return addr
        if addr not in self.mocks:
            self.mocks[addr] = start_mock(labels.get(addr, addr))
        return "127.0.0.1:%d" % self.mocks[addr].server_address[1]

    def direct(self, hostport):
        if hostport in self.upstream_names or hostport.startswith("127.0.0.1:") and any(
                "127.0.0.1:%d" % m.server_address[1] == hostport for m in self.mocks.values()):
            return hostport
        return self.upstream(hostport, {})

    def close(self):
        for m in self.mocks.values():
            m.shutdown()
            m.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)


def requests_of(text, scratch):
    """The `# diff:` lines of a config: (listen placeholder, method, path, headers)."""
    out = []
    for line in re.findall(r"^# diff:\s*(.+)$", text, re.M):
        listen = "@LISTEN@"
        if not re.match(r"[A-Z]+\s", line):
            # `@LISTEN2@ GET …` or `443 GET …`: the listen address as the config writes it.
            listen, line = line.split(None, 1)
        method, path, *rest = line.split(None, 2)
        headers = []
        for pair in re.split(r"\s(?=[A-Za-z][A-Za-z0-9-]*=)", rest[0]) if rest else []:
            name, _, value = pair.partition("=")
            headers.append((name.strip(), value.strip()))
        out.append((listen, method, path, headers))
    if not out:
        hosts = re.findall(r"server_name\s+([^;]+);", text)
        names = [h for hs in hosts for h in hs.split() if h != "_" and "*" not in h and "~" not in h]
        listen = next(iter(scratch.listens), None)
        ph = "@LISTEN@" if "@LISTEN@" in text else listen
        for h in names + ["unknown.invalid"]:
            out.append((ph, "GET", "/", [("Host", h)]))
    return out


def is_tls(text, listen_ph):
    for m in re.finditer(r"\blisten\s+([^\s;]+)([^;]*);", text):
        if m.group(1) == listen_ph and "ssl" in m.group(2).split():
            return True
    return False


def proxy_header(headers):
    """The PROXY protocol header a `# diff:` line asks for (`PROXY-V1=SRC` or `PROXY-V2=SRC`,
    an IPv4 source), and the headers left for HTTP."""
    rest, first = [], b""
    for k, v in headers:
        if k.upper() == "PROXY-V1":
            first = f"PROXY TCP4 {v} 127.0.0.1 40000 80\r\n".encode()
        elif k.upper() == "PROXY-V2":
            addrs = socket.inet_aton(v) + socket.inet_aton("127.0.0.1") + (40000).to_bytes(2, "big") \
                + (80).to_bytes(2, "big")
            first = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + len(addrs).to_bytes(2, "big") + addrs
        else:
            rest.append((k, v))
    return first, rest


def send(addr, tls, method, path, headers):
    first, headers = proxy_header(headers)
    host, port = addr.rsplit(":", 1)
    sni = dict((k.lower(), v) for k, v in headers).get("host", "localhost").split(":")[0]
    try:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c = http.client.HTTPSConnection(host, int(port), timeout=5, context=ctx)
            c._tunnel_host = None
            c.host = host
            # server_hostname for SNI
            c.sock = ctx.wrap_socket(socket.create_connection((host, int(port)), 5), server_hostname=sni)
        else:
            c = http.client.HTTPConnection(host, int(port), timeout=5)
            if first:
                c.sock = socket.create_connection((host, int(port)), 5)
                c.sock.sendall(first)
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            c.putheader(k, v)
        if method in ("POST", "PUT", "PATCH"):
            c.putheader("Content-Length", "0")
        c.endheaders()
        r = c.getresponse()
        body = r.read()
        out = {"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()}, "body": body}
        c.close()
        return out
    except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
        return {"status": "closed", "headers": {}, "body": b""}
    except (socket.timeout, OSError) as e:
        return {"status": f"error: {e}", "headers": {}, "body": b""}


def observe(answer, text):
    """What is compared of an answer (see the module's notes)."""
    h = answer["headers"]
    seen = {"status": answer["status"]}
    mock = h.get("x-mock")
    if mock and answer["body"]:
        try:
            got = json.loads(answer["body"])
        except ValueError:
            got = None
        if got:
            seen["upstream"] = got["mock"]
            seen["target"] = got["target"]
            names = set(n.lower() for n in re.findall(r"proxy_set_header\s+(\S+)", text))
            for name in sorted(names | {"host"}):
                if name not in NOT_COMPARED:
                    value = got["headers"].get(name)
                    # A client port differs from connection to connection.
                    seen["sent " + name] = value and re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", value)
    elif mock:
        seen["upstream"] = mock
    for name in sorted(set(n.lower() for n in re.findall(r"(?:add_header|proxy_hide_header)\s+(\S+)", text))):
        if name not in NOT_COMPARED:
            seen["answered " + name] = h.get(name)
    if "location" in h:
        seen["location"] = h["location"]
    status = answer["status"] if isinstance(answer["status"], int) else 0
    # A file's validators and framing, and what `expires` and `gzip_static` add.
    if not mock and status in (200, 206, 304) and "etag" in h:
        for name in ("etag", "last-modified", "content-length", "content-range", "cache-control",
                     "content-encoding"):
            if name in h:
                seen["file " + name] = h[name]
    pages = {c for codes in re.findall(r"error_page\s+([^;]+);", text) for c in codes.split()}
    own_error = status >= 400 and str(status) not in pages
    # A redirect's body is the proxy's own wording (nginx's is HTML); nobody reads it.
    if not mock and not own_error and not 300 <= status < 400 and answer["body"]:
        seen["body"] = answer["body"].decode("utf-8", "replace")
    return seen


def wait_listening(addrs, proc, within=10):
    deadline = time.time() + within
    for a in addrs:
        host, port = a.rsplit(":", 1)
        while True:
            if proc.poll() is not None:
                return False
            try:
                socket.create_connection((host, int(port)), 0.2).close()
                break
            except OSError:
                if time.time() > deadline:
                    return False
                time.sleep(0.05)
    return True


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx_conf(scratch, text):
    """The config as nginx will run it here: its own pid and error log, as root, with events."""
    text = re.sub(r"^\s*(user|pid|error_log)\s[^;]*;\s*$", "", text, flags=re.M)
    if not re.search(r"^\s*http\s*\{", text, re.M):
        text = "http {\n" + text + "\n}\n"
    if not re.search(r"^\s*events\s*\{", text, re.M):
        text = "events {}\n" + text
    head = f"user root;\npid {scratch.dir}/nginx.pid;\nerror_log {scratch.dir}/nginx-error.log;\n"
    path = scratch.conf + ".nginx"
    open(path, "w").write(head + text)
    return path


def run(conf, switchyard):
    name = os.path.basename(conf)
    scratch = Scratch(conf)
    try:
        text = open(scratch.conf).read()
        original = open(conf).read()
        reqs = requests_of(original, scratch)
        first = next(iter(scratch.listens.values()), "127.0.0.1:9")
        listen_of = lambda ph: scratch.listens.get(ph, first)
        addrs = sorted(set(scratch.listens.values()))
        results = {}
        # nginx
        path = nginx_conf(scratch, text)
        proc = subprocess.Popen(["nginx", "-p", scratch.dir, "-c", path, "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_listening(addrs, proc):
            stop(proc)
            return name, False, ["nginx did not start: " + proc.stderr.read().decode()[-500:]]
        results["nginx"] = [observe(send(listen_of(ph), is_tls(original, ph), m, p, h), original)
                            for ph, m, p, h in reqs]
        stop(proc)
        # switchyard
        out = os.path.join(scratch.dir, "switchyard.yaml")
        imp = subprocess.run([switchyard, "import-nginx", scratch.conf, "-o", out],
                             capture_output=True, text=True)
        if imp.returncode not in (0, 2):
            return name, False, ["import-nginx exited %d: %s" % (imp.returncode, imp.stderr[-800:])]
        imported = open(out).read()
        with open(out, "a") as f:
            f.write(f"admin: {{listen: \"127.0.0.1:{free_port()}\"}}\nwatch: false\n")
            if not re.search(r"^access_log:", imported, re.M):
                f.write("access_log: off\n")
        proc = subprocess.Popen([switchyard, "-c", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_listening(addrs, proc):
            stop(proc)
            return name, False, ["switchyard did not start: " + proc.stderr.read().decode()[-800:]]
        results["switchyard"] = [observe(send(listen_of(ph), is_tls(original, ph), m, p, h), original)
                                 for ph, m, p, h in reqs]
        stop(proc)
        problems = []
        for (ph, m, p, h), a, b in zip(reqs, results["nginx"], results["switchyard"]):
            for k in ADDED:
                if a.get(k) is None:
                    a.pop(k, None)
                    b.pop(k, None)
            if a != b:
                keys = sorted(set(a) | set(b))
                diff = "; ".join(f"{k}: nginx {a.get(k)!r} / switchyard {b.get(k)!r}"
                                 for k in keys if a.get(k) != b.get(k))
                problems.append(f"{m} {p} {dict(h)}: {diff}")
        return name, not problems, problems + [f"{len(reqs)} requests"]
    finally:
        scratch.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--switchyard", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchyard"))
    ap.add_argument("confs", nargs="*")
    args = ap.parse_args()
    if not shutil.which("nginx"):
        sys.exit("nginx is not installed (apt-get install nginx)")
    confs = args.confs or sorted(glob.glob(os.path.join(CORPUS, "*.conf")))
    failed = 0
    total = 0
    for conf in confs:
        name, ok, lines = run(conf, args.switchyard)
        total += 1
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {lines[-1] if ok else ''}")
        if not ok:
            failed += 1
            for l in lines:
                print("     " + l)
    print(f"{total - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
