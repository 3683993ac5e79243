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
# An attestation as `cosign attest --key` stores it: a DSSE envelope of an in-toto statement
# about the same digest, signed by the P-256 key over the PAE (pre-authentication encoding).
printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[{"name":"docker.io/rancher/mirrored-pause","digest":{"sha256":"%s"}}],"predicate":{"builder":{"id":"https://example.com/ci"}}}' "${digest#sha256:}" > "$tmp/statement.json"
type=application/vnd.in-toto+json
{ printf 'DSSEv1 %d %s %d ' "${#type}" "$type" "$(stat -c %s "$tmp/statement.json")"; cat "$tmp/statement.json"; } > "$tmp/pae"
openssl dgst -sha256 -sign "$tmp/p256.key" -out "$tmp/dsse.sig" "$tmp/pae"
printf '{"payloadType":"%s","payload":"%s","signatures":[{"keyid":"","sig":"%s"}]}' "$type" "$(base64 -w0 "$tmp/statement.json")" "$(base64 -w0 "$tmp/dsse.sig")" > dsse.json
# A key of a curve cosign does not use, to test the refusal.
openssl ecparam -name secp256k1 -genkey -noout | openssl pkey -pubout -out k256.pub
