#!/usr/bin/env bash
# Certificates for Temporal mTLS in the compose deployment (docs/DEPLOY.md): a private CA, the
# server's certificate (DNS name "temporal", the compose service) and one client certificate that
# fleetpatch's containers and the Temporal UI present.
#   scripts/make-temporal-certs.sh [DIR]     (default deploy/secrets/temporal)
# Existing files are kept: delete DIR to rotate everything, or one client pair to reissue it.
set -euo pipefail
dir="${1:-deploy/secrets/temporal}"
days="${FLEETPATCH_CERT_DAYS:-825}"
mkdir -p "$dir"
chmod 700 "$dir"
umask 077
cd "$dir"

if [ ! -s ca.key ]; then
  openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 \
    -subj "/CN=fleetpatch temporal CA" -keyout ca.key -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

issue() {  # name, common name, extended key usage, subjectAltName or ""
  local name="$1" cn="$2" eku="$3" san="$4"
  [ -s "$name.pem" ] && return 0
  local ext
  ext="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$ext"
  openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$name.key" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
    -extfile "$ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

issue server temporal "serverAuth,clientAuth" "DNS:temporal,DNS:localhost"
issue client fleetpatch "clientAuth" ""
# Compose mounts file secrets with the host file's mode, and the containers run as other users
# (fleetpatch 10001, temporalio/server 1000): the files they mount are readable, the directory
# (0700) keeps the host's other users out. The CA key is never mounted and stays 0600.
chmod 644 ca.pem server.pem client.pem server.key client.key
chmod 600 ca.key
openssl verify -CAfile ca.pem server.pem client.pem >/dev/null
echo "certificates in $dir: ca.pem, server.pem/.key (temporal), client.pem/.key (fleetpatch)"
