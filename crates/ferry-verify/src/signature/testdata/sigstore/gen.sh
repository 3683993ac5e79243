#!/usr/bin/env bash
# Regenerates the keyless test vectors with the integration tests' harness
# (tests/it/sigstore/make.py, python3-cryptography; never ferry): the trusted roots, a cosign 3
# keyless bundle of the image digest (bundle.json) and of another digest (other.json), a
# cosign 3 bundle signed with a key (key.json, key in cosign.pub) and a cosign 2 keyless .sig
# layer (legacy.json). The private keys are thrown away.
set -euo pipefail
cd "$(dirname "$0")"
digest=$(cat ../digest.txt)
other="sha256:$(printf 'another ferry test image' | sha256sum | cut -d' ' -f1)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
here=$(pwd)
cat > "$tmp/spec.json" <<JSON
{"signatures": [
 {"digest": "$digest", "out": "$here/bundle.json"},
 {"digest": "$other", "out": "$here/other.json"},
 {"digest": "$digest", "out": "$here/key.json", "kind": "key"},
 {"digest": "$digest", "out": "$here/legacy.json", "kind": "legacy", "repository": "rancher/mirrored-pause"}
]}
JSON
rm -f cosign.key cosign.pub
python3 ../../../../../../tests/it/sigstore/make.py "$here" "$tmp/spec.json"
rm -f cosign.key
