#!/bin/sh
# Makes the job's TLS certificates and prints them as the Secret `infobound-tls` the manifests mount:
#   deploy/k8s/make-certs.sh WORKERS [NAMESPACE] | kubectl apply -f -
# A CA (kept in OUT, default ./infobound-pki, for issuing more later), a certificate for the
# coordinator Service and one for the NATS Service, and one per worker pod infobound-worker-0 … WORKERS-1 whose CN and DNS names
# are the pod's own: with tls.worker_identity: certificate (the default) a worker can only use its own
# worker id. Run it again with a larger WORKERS before scaling the StatefulSet past it: the CA is reused.
# Needs openssl. The cert-manager path (one certificate per pod, no Secret) is in deploy/README.md.
set -eu

usage() {
  echo "usage: make-certs.sh WORKERS [NAMESPACE]   (OUT=DIR to keep the CA elsewhere; DAYS=N validity, default 365)" >&2
  exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
workers=$1
namespace=${2:-default}
case $workers in '' | *[!0-9]*) usage ;; esac
[ "$workers" -ge 1 ] || usage
out=${OUT:-./infobound-pki}
days=${DAYS:-365}
command -v openssl >/dev/null || {
  echo "make-certs.sh: openssl is needed" >&2
  exit 1
}
umask 077
mkdir -p "$out"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }

if [ ! -f "$out/ca.key" ]; then
  key "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -out "$out/ca.crt" -days "$days" -subj "/CN=infobound-ca" 2>/dev/null
fi

# issue NAME PURPOSE DNS-NAMES...: a certificate whose CN is NAME, signed by the CA.
issue() {
  name=$1
  purpose=$2
  shift 2
  sans=""
  for dns in "$@"; do sans="${sans:+$sans,}DNS:$dns"; done
  [ -f "$out/$name.key" ] || key "$out/$name.key"
  openssl req -new -key "$out/$name.key" -out "$out/$name.csr" -subj "/CN=$name" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$sans" "$purpose" >"$out/$name.ext"
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -out "$out/$name.crt" -days "$days" -extfile "$out/$name.ext" 2>/dev/null
  rm -f "$out/$name.csr" "$out/$name.ext"
}

svc="$namespace.svc"
issue infobound-coordinator serverAuth infobound-coordinator "infobound-coordinator.$svc" "infobound-coordinator.$svc.cluster.local"
issue infobound-nats serverAuth infobound-nats "infobound-nats.$svc" "infobound-nats.$svc.cluster.local"
i=0
while [ "$i" -lt "$workers" ]; do
  pod="infobound-worker-$i"
  # Peers dial each other at POD.infobound-workers (the headless Service); the worker id is POD.
  issue "$pod" serverAuth,clientAuth "$pod" "$pod.infobound-workers" "$pod.infobound-workers.$svc" "$pod.infobound-workers.$svc.cluster.local"
  i=$((i + 1))
done

b64() { base64 <"$1" | tr -d '\n'; }
echo "apiVersion: v1"
echo "kind: Secret"
echo "metadata:"
echo "  name: infobound-tls"
echo "  namespace: $namespace"
echo "type: Opaque"
echo "data:"
echo "  ca.crt: $(b64 "$out/ca.crt")"
for name in infobound-coordinator infobound-nats $(i=0; while [ "$i" -lt "$workers" ]; do echo "infobound-worker-$i"; i=$((i + 1)); done); do
  echo "  $name.crt: $(b64 "$out/$name.crt")"
  echo "  $name.key: $(b64 "$out/$name.key")"
done
