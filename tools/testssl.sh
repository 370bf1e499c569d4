#!/usr/bin/env bash
# Run testssl.sh (Debian package `testssl.sh`) against a switchyard TLS listener on 127.0.0.1
# and print every finding rated LOW or above. A private CA signs the certificate (with CRL and
# OCSP URIs, as a public CA's would), and testssl is told to trust it, so the report is about
# the TLS setup, not about a self-signed test certificate.
#
#   tools/testssl.sh [path/to/switchyard]      (default: target/release/switchyard)
set -euo pipefail
BIN=${1:-target/release/switchyard}
command -v testssl >/dev/null || { echo "install testssl.sh (apt-get install testssl.sh)"; exit 2; }
DIR=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
cd "$DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
  -out ca.pem -days 3650 -subj "/CN=testssl CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr \
  -subj "/CN=localhost" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
  "keyUsage=critical,digitalSignature" "basicConstraints=CA:FALSE" \
  "crlDistributionPoints=URI:http://ca.test.invalid/ca.crl" \
  "authorityInfoAccess=OCSP;URI:http://ocsp.test.invalid" > ext.cnf
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 365 \
  -extfile ext.cnf 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADMIN=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > sy.yaml <<YAML
listen:
  - addr: "127.0.0.1:$PORT"
    tls: {certificates: [{cert: srv.pem, key: srv.key}]}
    hsts: 365d
admin: {listen: "127.0.0.1:$ADMIN"}
access_log: off
upstreams:
  app: {servers: [{addr: "127.0.0.1:$APP"}]}
YAML
python3 -m http.server "$APP" --bind 127.0.0.1 >/dev/null 2>&1 &
"$OLDPWD/$BIN" -c sy.yaml >sy.log 2>&1 &
for _ in $(seq 50); do curl -s --cacert ca.pem "https://localhost:$PORT/" >/dev/null && break; sleep 0.1; done
testssl --add-ca "$DIR/ca.pem" --jsonfile "$DIR/out.json" --quiet --color 0 "https://localhost:$PORT" > report.txt 2>&1 || true
python3 - "$DIR/out.json" <<'PY'
import collections, json, sys
findings = json.load(open(sys.argv[1]))
print("severity counts:", dict(collections.Counter(f["severity"] for f in findings)))
for f in findings:
    if f["severity"] in ("LOW", "MEDIUM", "HIGH", "CRITICAL", "WARN"):
        print(f'{f["severity"]:8} {f["id"]:22} {f["finding"][:120]}')
bad = [f for f in findings if f["severity"] in ("HIGH", "CRITICAL")]
sys.exit(1 if bad else 0)
PY
