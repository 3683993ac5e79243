#!/usr/bin/env bash
# Regenerates the signature test vectors with openssl (never with ferry): one key pair per
# algorithm cosign signs with, and each key's signature over payload.json, a simple-signing
# payload as cosign writes it. The private keys are thrown away.
set -euo pipefail
cd "$(dirname "$0")"
digest="sha256:$(printf 'ferry test image' | sha256sum | cut -d' ' -f1)"
printf '{"critical":{"identity":{"docker-reference":"docker.io/rancher/mirrored-pause"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":null}' "$digest" > payload.json
echo "$digest" > digest.txt
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/p256.key"
openssl ecparam -name secp384r1 -genkey -noout -out "$tmp/p384.key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.key" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$tmp/ed25519.key"
for k in p256 p384 rsa; do
  openssl pkey -in "$tmp/$k.key" -pubout -out "$k.pub"
  md=sha256; [ "$k" = p384 ] && md=sha384
  openssl dgst -"$md" -sign "$tmp/$k.key" -out "$tmp/$k.sig" payload.json
  base64 -w0 "$tmp/$k.sig" > "$k.sig.b64"
done
openssl pkey -in "$tmp/ed25519.key" -pubout -out ed25519.pub
openssl pkeyutl -sign -rawin -inkey "$tmp/ed25519.key" -in payload.json -out "$tmp/ed25519.sig"
base64 -w0 "$tmp/ed25519.sig" > ed25519.sig.b64
# A key of a curve cosign does not use, to test the refusal.
openssl ecparam -name secp256k1 -genkey -noout | openssl pkey -pubout -out k256.pub
