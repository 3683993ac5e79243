#!/usr/bin/env python3
"""Signs every image of a bench workload as `cosign sign --key` does, for the `signed` phase
of scripts/bench.sh, with python3-cryptography (never with ferry).

For each `REPO:TAG` of the images list, the image's top-level digest is read from the
distribution storage's tag link; a simple-signing payload naming it is signed with an ECDSA
P-256 key (SHA-256, ASN.1 DER, as cosign's default keys sign), and the `.sig` manifest
(an OCI image manifest: a small config and the payload as its one layer, the base64 signature
in the layer's `dev.cosignproject.cosign/signature` annotation) is written into the storage
under the tag `sha256-<hex>.sig`, the way the registry itself lays out a push.

The storage may be a hard-linked copy of the unsigned workload (`cp -al`): only new files are
written, never one that exists, so the original is not changed.

Usage: bench_sign.py --storage DIR --images images.txt --key-dir DIR
Writes KEY-DIR/cosign.key (PEM, unencrypted) and KEY-DIR/cosign.pub; prints the count.
"""

import argparse
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

V2 = ("docker", "registry", "v2")


def write_new(path, data):
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def put_blob(root, repo, data):
    hexd = hashlib.sha256(data).hexdigest()
    write_new(os.path.join(root, *V2, "blobs", "sha256", hexd[:2], hexd, "data"), data)
    write_new(os.path.join(root, *V2, "repositories", repo, "_layers", "sha256", hexd, "link"),
              f"sha256:{hexd}".encode())
    return f"sha256:{hexd}"


def put_manifest(root, repo, tag, data):
    hexd = hashlib.sha256(data).hexdigest()
    write_new(os.path.join(root, *V2, "blobs", "sha256", hexd[:2], hexd, "data"), data)
    link = f"sha256:{hexd}".encode()
    m = os.path.join(root, *V2, "repositories", repo, "_manifests")
    write_new(os.path.join(m, "revisions", "sha256", hexd, "link"), link)
    write_new(os.path.join(m, "tags", tag, "current", "link"), link)
    write_new(os.path.join(m, "tags", tag, "index", "sha256", hexd, "link"), link)
    return f"sha256:{hexd}"


def key(key_dir):
    path = os.path.join(key_dir, "cosign.key")
    if os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    k = ec.generate_private_key(ec.SECP256R1())
    os.makedirs(key_dir, exist_ok=True)
    write_new(path, k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    write_new(os.path.join(key_dir, "cosign.pub"),
              k.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return k


def sign(root, repo, digest, k):
    payload = json.dumps({
        "critical": {"identity": {"docker-reference": f"index.docker.io/{repo}"},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": None}, separators=(",", ":")).encode()
    sig = base64.b64encode(k.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = put_blob(root, repo, payload)
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer]}},
                        separators=(",", ":")).encode()
    config_digest = put_blob(root, repo, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                    "digest": layer, "size": len(payload),
                    "annotations": {"dev.cosignproject.cosign/signature": sig}}]},
        separators=(",", ":")).encode()
    return put_manifest(root, repo, digest.replace(":", "-") + ".sig", manifest)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--storage", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--key-dir", required=True)
    a = ap.parse_args(argv)
    k = key(a.key_dir)
    signed = set()
    with open(a.images) as f:
        refs = [line.strip() for line in f if line.strip()]
    for ref in refs:
        repo, tag = ref.rsplit(":", 1)
        link = os.path.join(a.storage, *V2, "repositories", repo, "_manifests", "tags", tag,
                            "current", "link")
        with open(link) as f:
            digest = f.read().strip()
        if (repo, digest) not in signed:
            sign(a.storage, repo, digest, k)
            signed.add((repo, digest))
    print(len(signed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
