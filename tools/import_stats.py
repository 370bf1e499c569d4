#!/usr/bin/env python3
"""How much of the tests/nginx/ corpus `switchyard import-nginx` carries over: per config, the
exit code and the directives reported as not carried over; then the configs imported whole
and the total dropped.

    python3 tools/import_stats.py [BINARY ...]   (default: target/release/switchyard)

A binary that prints `import-nginx: N directive(s) not carried over` is taken at its word;
for older builds, which did not, a report line counts as dropped unless its reason is one of
the notes those builds wrote (the list below, from their source)."""
import os, re, shutil, subprocess, sys, tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CORPUS = os.path.join(ROOT, "tests", "nginx")
OLD_NOTES = [
    "switchyard sets this header itself", "an empty value removes the field", "`deny all` without `allow`",
    "excess requests get 429 at once", "switchyard speaks HTTP/1.1 to upstreams", "not needed by switchyard",
    "the log format is switchyard's", "a `down` server is left out", "switchyard's hash is always consistent",
    "TLS 1.0 and 1.1 are never offered", "a `redirect_https` listener", "an exact-match location becomes a prefix route",
]
SUBS = {"@A1@": "127.0.0.1:3001", "@A2@": "127.0.0.1:3002", "@A3@": "127.0.0.1:3003", "@REFUSED@": "127.0.0.1:9",
        "@LISTEN@": "127.0.0.1:8080", "@LISTEN2@": "127.0.0.1:8081", "@TLS@": os.path.join(ROOT, "conf/examples/tls")}


def stats(binary):
    work = tempfile.mkdtemp()
    shutil.copytree(CORPUS, work, dirs_exist_ok=True)
    for d, _, files in os.walk(work):
        for f in files:
            if f.endswith(".conf"):
                p = os.path.join(d, f)
                t = open(p).read().replace("@ROOT@", work)
                for a, b in SUBS.items():
                    t = t.replace(a, b)
                open(p, "w").write(t)
    rows = []
    for name in sorted(f for f in os.listdir(work) if f.endswith(".conf")):
        r = subprocess.run([binary, "import-nginx", os.path.join(work, name), "-o", os.path.join(work, name + ".yaml")],
                           capture_output=True, text=True)
        m = re.search(r"import-nginx: (\d+) directive\(s\) not carried over", r.stderr)
        if m:
            dropped = int(m.group(1))
        else:
            lines = [l for l in r.stderr.splitlines() if re.match(r"\S+:\d+: ", l)]
            dropped = sum(1 for l in lines if not any(n in l for n in OLD_NOTES))
        rows.append((name, r.returncode, dropped))
    shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    binaries = sys.argv[1:] or [os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "switchyard")]
    results = [stats(b) for b in binaries]
    print("config".ljust(28) + "".join(f"{'exit/dropped':>16}" for _ in binaries))
    for i, (name, _, _) in enumerate(results[0]):
        print(name.ljust(28) + "".join(f"{r[i][1]:>10}/{r[i][2]:<5}" for r in results))
    for b, rows in zip(binaries, results):
        whole = sum(1 for _, code, d in rows if code == 0 and d == 0)
        print(f"{b}: {whole} of {len(rows)} imported with nothing dropped; {sum(d for _, _, d in rows)} directives dropped")


if __name__ == "__main__":
    main()
